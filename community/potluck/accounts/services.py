# SPDX-License-Identifier: Apache-2.0
"""What the accounts app does: organizations, members, roles and API keys."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from potluck import extensions
from potluck.accounts import keys
from potluck.accounts.models import (
    KEY_SCOPES,
    ApiKey,
    Membership,
    Organization,
    Role,
    User,
)
from potluck.errors import Conflict, Forbidden, InvalidInput

log = logging.getLogger(__name__)

_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# last_used_at is informative; writing it on every request would cost a row update each.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _clean_slug(name: str, slug: str | None) -> str:
    candidate = (slug or slugify(name)).strip().lower()
    if not _SLUG_RE.match(candidate):
        raise InvalidInput(
            "use 1-64 lowercase letters, digits and hyphens, starting and ending with a "
            "letter or digit",
            field="slug",
        )
    return candidate


@transaction.atomic
def create_organization(name: str, *, slug: str | None = None, owner: User | None = None
                        ) -> Organization:
    name = name.strip()
    if not name:
        raise InvalidInput("an organization needs a name", field="name")
    if len(name) > 200:
        raise InvalidInput("at most 200 characters", field="name")
    clean = _clean_slug(name, slug)
    if Organization.objects.filter(slug=clean).exists():
        raise Conflict(f"an organization named {clean!r} already exists", field="slug")
    try:
        with transaction.atomic():
            org = Organization.objects.create(name=name, slug=clean)
    except IntegrityError as exc:  # a concurrent create won the race
        raise Conflict(f"an organization named {clean!r} already exists", field="slug") from exc
    if owner is not None:
        Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
    log.info("organization created: %s", org.slug)
    return org


def get_organization(slug: str) -> Organization:
    try:
        return Organization.objects.get(slug=slug)
    except Organization.DoesNotExist:
        raise InvalidInput(f"no organization named {slug!r}", field="org") from None


def clean_email(email: str) -> str:
    email = email.strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise InvalidInput(f"{email!r} is not a valid email address", field="email") from None
    return email


def get_or_create_user(email: str) -> User:
    email = clean_email(email)
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        return user
    user = User(username=email, email=email)
    user.set_unusable_password()
    user.save()
    return user


def set_password(user: User, password: str) -> None:
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password") from None
    user.set_password(password)
    user.save(update_fields=["password"])


def clean_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InvalidInput(f"{role!r} is not a role; choose one of {choices}",
                           field="role") from None


@transaction.atomic
def add_member(org: Organization, email: str, role: str, *, granted_by_owner: bool = True
               ) -> Membership:
    wanted = clean_role(role)
    if wanted == Role.OWNER and not granted_by_owner:
        raise Forbidden("only an owner can make another owner", field="role")
    user = get_or_create_user(email)
    if Membership.objects.filter(organization=org, user=user).exists():
        raise Conflict(f"{user.email} is already a member", field="email")
    extensions.check_member_policies(org, user.email, wanted.value)
    membership = Membership.objects.create(organization=org, user=user, role=wanted)
    extensions.record_admin_event("member.added", organization_id=org.id,
                                  target=f"user:{user.id}", details={"role": wanted.value})
    return membership


def _owner_count(org: Organization) -> int:
    # Locks the org's owner rows so two concurrent demotions cannot both pass the check.
    return len(Membership.objects.select_for_update()
               .filter(organization=org, role=Role.OWNER).values_list("id", flat=True))


@transaction.atomic
def change_role(membership: Membership, role: str, *, granted_by_owner: bool) -> Membership:
    wanted = clean_role(role)
    touches_owner = Role.OWNER in (wanted, membership.role)
    if touches_owner and not granted_by_owner:
        raise Forbidden("only an owner can grant or remove the owner role", field="role")
    if (membership.role == Role.OWNER and wanted != Role.OWNER
            and _owner_count(membership.organization) <= 1):
        raise Conflict("an organization must keep at least one owner", field="role")
    previous = membership.role
    membership.role = wanted
    membership.save(update_fields=["role"])
    extensions.record_admin_event(
        "member.role_changed", organization_id=membership.organization_id,
        target=f"user:{membership.user_id}", details={"from": previous, "to": wanted.value})
    return membership


@transaction.atomic
def remove_member(membership: Membership, *, removed_by_owner: bool) -> None:
    if membership.role == Role.OWNER:
        if not removed_by_owner:
            raise Forbidden("only an owner can remove an owner")
        if _owner_count(membership.organization) <= 1:
            raise Conflict("an organization must keep at least one owner")
    membership.delete()
    extensions.record_admin_event("member.removed", organization_id=membership.organization_id,
                                  target=f"user:{membership.user_id}")


def _clean_scopes(scopes: list[str] | None) -> list[str]:
    if scopes is None:
        return [s.value for s in KEY_SCOPES if s.value != "admin"]
    allowed = {s.value for s in KEY_SCOPES}
    unknown = sorted(set(scopes) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown scope {unknown[0]!r}; choose from {', '.join(sorted(allowed))}",
            field="scopes",
        )
    if not scopes:
        raise InvalidInput("a key needs at least one scope", field="scopes")
    return sorted(set(scopes))


def create_api_key(
    org: Organization,
    name: str,
    *,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
    created_by: User | None = None,
    created_by_key: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret; the secret is never stored or shown again."""
    name = name.strip()
    if not name:
        raise InvalidInput("a key needs a name", field="name")
    if len(name) > 100:
        raise InvalidInput("at most 100 characters", field="name")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("the expiry must be in the future", field="expires_at")
    clean_scopes = _clean_scopes(scopes)
    for _ in range(3):  # a lookup collision among 62**12 values is rare, not impossible
        lookup, raw = keys.generate()
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    organization=org, name=name, lookup=lookup, secret_hash=keys.hash_key(raw),
                    scopes=clean_scopes, expires_at=expires_at, created_by=created_by,
                    created_by_key=created_by_key,
                )
                extensions.record_admin_event(
                    "api_key.created", organization_id=org.id,
                    actor=f"user:{created_by.id}" if created_by else "",
                    target=f"key:{key.display_prefix}",
                    details={"name": name, "scopes": clean_scopes})
        except IntegrityError:
            continue
        log.info("api key created: org=%s prefix=%s", org.slug, key.display_prefix)
        return key, raw
    raise Conflict("could not allocate a unique key; try again")


@transaction.atomic
def revoke_api_key(key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        extensions.record_admin_event("api_key.revoked", organization_id=key.organization_id,
                                      target=f"key:{key.display_prefix}")
        log.info("api key revoked: prefix=%s", key.display_prefix)
    return key


def authenticate_api_key(raw: str) -> ApiKey | None:
    """The active key that ``raw`` is, or None. Never logs the raw key."""
    parsed = keys.parse(raw)
    if parsed is None:
        return None
    key = (ApiKey.objects.select_related("organization")
           .filter(lookup=parsed.lookup).first())
    if key is None or not keys.matches(raw, key.secret_hash) or not key.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


@transaction.atomic
def bootstrap_admin(org_name: str = "Default", username: str = "admin") -> tuple[User, str | None]:
    """The first operator account and its organization; returns the password once, on creation."""
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, None
    password = secrets.token_urlsafe(12)
    user = User.objects.create_superuser(
        username=username, email=f"{username}@potluck.localhost", password=password
    )
    org = Organization.objects.filter(slug=slugify(org_name)).first()
    if org is None:
        org = create_organization(org_name)
    Membership.objects.get_or_create(organization=org, user=user, defaults={"role": Role.OWNER})
    return user, password
