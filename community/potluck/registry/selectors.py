# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

from django.db.models import QuerySet

from potluck.accounts.models import Organization
from potluck.registry.models import RegisteredModel


def models_visible_to(org: Organization) -> QuerySet[RegisteredModel]:
    return RegisteredModel.objects.for_org(org).select_related("base")
