# SPDX-License-Identifier: Apache-2.0
"""Read queries for accounts, always scoped by organization or by user."""

from __future__ import annotations

from django.db.models import QuerySet

from potluck.accounts.models import ApiKey, Membership, Organization, User


def organizations_of(user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).distinct()


def membership_of(user: User, org: Organization) -> Membership | None:
    return Membership.objects.filter(user=user, organization=org).first()


def members(org: Organization) -> QuerySet[Membership]:
    return Membership.objects.for_org(org).select_related("user")


def api_keys(org: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_org(org).select_related("created_by")
