# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""From an identity an IdP vouched for to a Potluck user in the organization.

Who may come in through an organization's IdP: only addresses of a domain that this
organization verified. An address of another organization's verified domain, of a
domain nobody verified, or a user the IdP places in another organization is refused;
otherwise an IdP could sign in as anybody. New users are provisioned just in time with
the role their IdP groups map to (or the connection's default role); a returning user's
role follows their groups whenever one of them is mapped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from potluck.accounts import services as accounts
from potluck.accounts.models import Membership, Organization, Role, User
from potluck.errors import Conflict, Forbidden, InvalidInput
from potluck_enterprise.sso import domains
from potluck_enterprise.sso.models import GroupRoleMapping
from potluck_enterprise.sso.models import OidcConnection as _Oidc
from potluck_enterprise.sso.models import SamlConnection as _Saml

log = logging.getLogger(__name__)

# Most privileged first: a user in several mapped groups gets the highest role.
ROLE_RANK = [Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER]


@dataclass(frozen=True)
class Identity:
    """What an IdP asserted about the person signing in."""

    protocol: str  # "oidc" | "saml"
    subject: str
    email: str
    groups: tuple[str, ...] = ()
    org_claim: Any = None  # the value of the connection's org claim, if it names one
    extra: dict[str, Any] = field(default_factory=dict)


def groups_from(value: Any) -> tuple[str, ...]:
    """A claim's groups as strings: a list, or one string (space or comma separated)."""
    if value is None:
        return ()
    if isinstance(value, str):
        parts: Iterable[Any] = value.replace(",", " ").split()
    elif isinstance(value, list | tuple | set):
        parts = value
    else:
        return ()
    return tuple(str(p).strip() for p in parts if str(p).strip())


def role_for_groups(org: Organization, groups: Iterable[str]) -> Role | None:
    names = set(groups)
    if not names:
        return None
    mapped = {Role(m.role) for m in GroupRoleMapping.objects.for_org(org).filter(group__in=names)}
    for role in ROLE_RANK:
        if role in mapped:
            return role
    return None


def check_admission(org: Organization, connection: _Oidc | _Saml, identity: Identity) -> str:
    """The clean email if this organization's IdP may sign ``identity`` in; else Forbidden."""
    email = (identity.email or "").strip().lower()
    if not email or "@" not in email:
        raise InvalidInput("the identity provider did not send an email address")
    if connection.org_claim:
        expected = connection.org_claim_value or org.slug
        asserted = identity.org_claim
        values = asserted if isinstance(asserted, list | tuple) else [asserted]
        if expected not in [str(v) for v in values if v is not None]:
            raise Forbidden(
                f"the identity provider places {email} in another organization, not "
                f"{org.slug}")
    owner = domains.verified_domain_for(email)
    domain = domains.domain_of(email)
    if owner is not None and owner.organization_id != org.pk:
        raise Forbidden(
            f"{email} belongs to another organization's verified domain ({domain}): sign in "
            "through that organization's SSO")
    if owner is None:
        raise Forbidden(
            f"the email domain {domain} is not verified for {org.slug}: an organization admin "
            "must verify it before its users can sign in with SSO")
    return email


@transaction.atomic
def provision(org: Organization, connection: _Oidc | _Saml, identity: Identity) -> User:
    """The user to sign in: created and added to ``org`` if new, role synced from groups."""
    email = check_admission(org, connection, identity)
    user = accounts.get_or_create_user(email)
    if not user.is_active:
        raise Forbidden(f"the account {email} is disabled")
    mapped = role_for_groups(org, identity.groups)
    membership = Membership.objects.for_org(org).filter(user=user).first()
    if membership is None:
        role = mapped or Role(connection.default_role)
        # add_member runs the member policies (the licence's seat limit) like any invite.
        accounts.add_member(org, email, role.value, granted_by_owner=True)
        log.info("sso: provisioned %s into %s as %s", user.pk, org.slug, role.value)
    elif mapped is not None and membership.role != mapped:
        try:
            with transaction.atomic():
                accounts.change_role(membership, mapped.value, granted_by_owner=True)
            log.info("sso: role of %s in %s is now %s (IdP groups)", user.pk, org.slug,
                     mapped.value)
        except Conflict:  # the last owner keeps ownership until someone else has it
            log.warning("sso: kept the last owner of %s as owner despite IdP groups", org.slug)
    return user
