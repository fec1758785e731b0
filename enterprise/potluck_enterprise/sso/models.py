# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""SSO data: per-organization OIDC and SAML connections, IdP group -> role mappings,
verified email domains, and the store of SAML assertions already consumed.

Secrets (the OIDC client secret, the SAML SP private key) are kept only as Fernet tokens
(``potluck_enterprise.crypto``); the properties below decrypt them on use.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from potluck.accounts.models import Role
from potluck.tenancy import OrgOwnedModel
from potluck_enterprise import crypto

__all__ = [
    "EmailDomain",
    "GroupRoleMapping",
    "OidcConnection",
    "SamlConnection",
    "SeenAssertion",
]

DEFAULT_OIDC_SCOPES = ["openid", "email", "profile"]


def _default_scopes() -> list[str]:
    return list(DEFAULT_OIDC_SCOPES)


class ConnectionBase(OrgOwnedModel):
    """What both protocols share: on/off, the role of new users, which claim says what."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    enabled = models.BooleanField(default=True)
    # Role of a user provisioned just in time when none of their groups is mapped.
    default_role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    # Claim (OIDC) or attribute (SAML) that lists the user's groups.
    groups_claim = models.CharField(max_length=200, default="groups")
    # Optional: a claim naming the user's organization at the IdP; when set, its value
    # must equal ``org_claim_value`` or the sign-in is refused (a shared, multi-tenant IdP).
    org_claim = models.CharField(max_length=200, blank=True, default="")
    org_claim_value = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class OidcConnection(ConnectionBase):
    discovery_url = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    client_secret_encrypted = models.TextField()
    scopes = ArrayField(models.CharField(max_length=100), default=_default_scopes)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"],
                                               name="sso_one_oidc_connection_per_org")]

    def __str__(self) -> str:
        return f"OIDC {self.client_id} @ {self.discovery_url}"

    @property
    def client_secret(self) -> str:
        return crypto.decrypt(self.client_secret_encrypted)

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        self.client_secret_encrypted = crypto.encrypt(value)


class SamlConnection(ConnectionBase):
    idp_metadata_xml = models.TextField()
    # Where the metadata was fetched from, when it was given as a URL.
    idp_metadata_url = models.URLField(max_length=500, blank=True, default="")
    idp_entity_id = models.CharField(max_length=500)
    sp_entity_id = models.CharField(max_length=500)
    sp_private_key_encrypted = models.TextField()
    sp_certificate = models.TextField()
    # Attribute with the email address; the NameID is used when it is absent.
    email_attribute = models.CharField(max_length=200, default="email")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"],
                                               name="sso_one_saml_connection_per_org")]

    def __str__(self) -> str:
        return f"SAML {self.sp_entity_id} <- {self.idp_entity_id}"

    # Never configurable: an unsigned assertion is never accepted.
    want_assertions_signed = True

    @property
    def sp_private_key(self) -> str:
        return crypto.decrypt(self.sp_private_key_encrypted)

    @sp_private_key.setter
    def sp_private_key(self, value: str) -> None:
        self.sp_private_key_encrypted = crypto.encrypt(value)


class GroupRoleMapping(OrgOwnedModel):
    """Members of ``group`` at the organization's IdP get ``role`` (the highest one wins)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    group = models.CharField(max_length=255)
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group"]
        constraints = [models.UniqueConstraint(fields=["organization", "group"],
                                               name="sso_one_mapping_per_group")]

    def __str__(self) -> str:
        return f"{self.group} -> {self.role}"


class VerificationMethod(models.TextChoices):
    DNS = "dns"
    OPERATOR = "operator"


class EmailDomain(OrgOwnedModel):
    """An email domain an organization claims; it counts only once verified.

    Verified: by a DNS TXT record carrying ``verification_token``, or by an operator
    (a superuser). A verified domain belongs to one organization: SSO of that organization
    may provision its users, and ``enforce_sso`` refuses their password sign-in.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    domain = models.CharField(max_length=253)
    verification_token = models.CharField(max_length=64)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_method = models.CharField(max_length=16, choices=VerificationMethod.choices,
                                           blank=True, default="")
    enforce_sso = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "domain"],
                                    name="sso_domain_once_per_org"),
            models.UniqueConstraint(fields=["domain"], condition=Q(verified_at__isnull=False),
                                    name="sso_verified_domain_has_one_org"),
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class SeenAssertion(OrgOwnedModel):
    """A SAML assertion already consumed: the same one again is a replay."""

    idp_entity_id = models.CharField(max_length=500)
    assertion_id = models.CharField(max_length=255)
    # Kept until the assertion would have expired anyway; older rows are purged.
    expires_at = models.DateTimeField()
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["idp_entity_id", "assertion_id"],
                                               name="sso_assertion_used_once")]
        indexes = [models.Index(fields=["expires_at"], name="sso_seen_assertion_expiry")]
