# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""What an organization admin does with SSO: connections, group -> role mappings, secrets."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from potluck import extensions
from potluck.accounts.models import Organization, Role
from potluck.errors import Conflict, Forbidden, InvalidInput, NotFound
from potluck_enterprise import crypto
from potluck_enterprise.sso import oidc, remote, saml
from potluck_enterprise.sso.models import (
    GroupRoleMapping,
    OidcConnection,
    SamlConnection,
)

log = logging.getLogger(__name__)

COMMON_FIELDS = ("enabled", "default_role", "groups_claim", "org_claim", "org_claim_value")
OIDC_FIELDS = ("discovery_url", "client_id", "scopes", *COMMON_FIELDS)
SAML_FIELDS = ("sp_entity_id", "email_attribute", *COMMON_FIELDS)


def _check_role(role: str, *, field: str, granted_by_owner: bool) -> Role:
    try:
        clean = Role(role)
    except ValueError:
        raise InvalidInput(f"{role!r} is not a role; choose one of "
                           f"{', '.join(r.value for r in Role)}", field=field) from None
    if clean == Role.OWNER and not granted_by_owner:
        raise Forbidden("only an owner can make the owner role reachable through SSO",
                        field=field)
    return clean


def _apply(connection: OidcConnection | SamlConnection, data: dict[str, Any],
           fields: tuple[str, ...], *, granted_by_owner: bool) -> None:
    for name in fields:
        if name in data:
            setattr(connection, name, data[name])
    if "default_role" in data:
        _check_role(data["default_role"], field="default_role",
                    granted_by_owner=granted_by_owner)
    if connection.org_claim and len(connection.org_claim) > 200:
        raise InvalidInput("at most 200 characters", field="org_claim")
    connection.updated_at = timezone.now()


@transaction.atomic
def save_oidc_connection(org: Organization, data: dict[str, Any], *,
                         granted_by_owner: bool) -> OidcConnection:
    """Create or update the organization's OIDC connection (the secret is write-only)."""
    connection = OidcConnection.objects.for_org(org).select_for_update().first()
    creating = connection is None
    if connection is None:
        connection = OidcConnection(organization=org)
    _apply(connection, data, OIDC_FIELDS, granted_by_owner=granted_by_owner)
    if data.get("client_secret"):
        connection.client_secret = data["client_secret"]
    elif creating:
        raise InvalidInput("a client secret is needed", field="client_secret")
    if "openid" not in connection.scopes:
        raise InvalidInput("the scopes must include 'openid'", field="scopes")
    remote.check_url(connection.discovery_url, field="discovery_url")
    if not connection.client_id.strip():
        raise InvalidInput("a client id is needed", field="client_id")
    # Proves the IdP answers and describes itself before anyone depends on it.
    oidc.discover(connection.discovery_url, refresh=True)
    connection.save()
    extensions.record_admin_event("sso.oidc_connection_saved", organization_id=org.id,
                                  target="sso:oidc", details={"created": creating})
    log.info("sso: OIDC connection %s for %s", "created" if creating else "updated", org.slug)
    return connection


def _idp_metadata(data: dict[str, Any]) -> tuple[str, str] | None:
    """(xml, url) from the request: the XML itself, or a URL to fetch it from."""
    xml = (data.get("idp_metadata_xml") or "").strip()
    url = (data.get("idp_metadata_url") or "").strip()
    if xml and url:
        raise InvalidInput("give the IdP metadata as XML or as a URL, not both",
                           field="idp_metadata_url")
    if url:
        return remote.fetch_text(url, field="idp_metadata_url"), url
    if xml:
        return xml, ""
    return None


@transaction.atomic
def save_saml_connection(org: Organization, data: dict[str, Any], *, default_entity_id: str,
                         granted_by_owner: bool) -> SamlConnection:
    """Create or update the organization's SAML connection; a new one gets its SP key pair."""
    connection = SamlConnection.objects.for_org(org).select_for_update().first()
    creating = connection is None
    metadata = _idp_metadata(data)
    if connection is None:
        if metadata is None:
            raise InvalidInput("the IdP metadata is needed (XML or URL)",
                               field="idp_metadata_xml")
        connection = SamlConnection(organization=org, sp_entity_id=default_entity_id)
    _apply(connection, data, SAML_FIELDS, granted_by_owner=granted_by_owner)
    if not connection.sp_entity_id.strip():
        raise InvalidInput("the SP entity id cannot be blank", field="sp_entity_id")
    if metadata is not None:
        xml, url = metadata
        connection.idp_entity_id = saml.parse_idp_metadata(xml)
        connection.idp_metadata_xml = xml
        connection.idp_metadata_url = url
    if creating:
        host = urlsplit(connection.sp_entity_id).hostname or connection.sp_entity_id
        key_pem, cert_pem = saml.generate_sp_keypair(host)
        connection.sp_private_key = key_pem
        connection.sp_certificate = cert_pem
    connection.save()
    extensions.record_admin_event("sso.saml_connection_saved", organization_id=org.id,
                                  target="sso:saml", details={"created": creating})
    log.info("sso: SAML connection %s for %s", "created" if creating else "updated", org.slug)
    return connection


@transaction.atomic
def regenerate_sp_keypair(connection: SamlConnection) -> SamlConnection:
    """A new SP key and certificate (the IdP must then load the new SP metadata)."""
    host = urlsplit(connection.sp_entity_id).hostname or connection.sp_entity_id
    key_pem, cert_pem = saml.generate_sp_keypair(host)
    connection.sp_private_key = key_pem
    connection.sp_certificate = cert_pem
    connection.updated_at = timezone.now()
    connection.save(update_fields=["sp_private_key_encrypted", "sp_certificate", "updated_at"])
    return connection


@transaction.atomic
def delete_connection(connection: OidcConnection | SamlConnection) -> None:
    kind = "oidc" if isinstance(connection, OidcConnection) else "saml"
    connection.delete()
    extensions.record_admin_event(f"sso.{kind}_connection_deleted",
                                  organization_id=connection.organization_id,
                                  target=f"sso:{kind}")


def add_mapping(org: Organization, group: str, role: str, *, granted_by_owner: bool
                ) -> GroupRoleMapping:
    group = (group or "").strip()
    if not group:
        raise InvalidInput("the IdP group name cannot be blank", field="group")
    if len(group) > 255:
        raise InvalidInput("at most 255 characters", field="group")
    clean = _check_role(role, field="role", granted_by_owner=granted_by_owner)
    try:
        with transaction.atomic():
            mapping = GroupRoleMapping.objects.create(organization=org, group=group,
                                                      role=clean.value)
            extensions.record_admin_event("sso.role_mapping_added", organization_id=org.id,
                                          target=f"group:{group}"[:240],
                                          details={"role": clean.value})
            return mapping
    except IntegrityError:
        raise Conflict(f"the group {group!r} is already mapped", field="group") from None


def change_mapping(mapping: GroupRoleMapping, role: str, *, granted_by_owner: bool
                   ) -> GroupRoleMapping:
    clean = _check_role(role, field="role", granted_by_owner=True)
    touches_owner = Role.OWNER in (clean, mapping.role)
    if touches_owner and not granted_by_owner:
        raise Forbidden("only an owner can change a mapping to or from the owner role",
                        field="role")
    with transaction.atomic():
        previous = mapping.role
        mapping.role = clean.value
        mapping.save(update_fields=["role"])
        extensions.record_admin_event("sso.role_mapping_changed",
                                      organization_id=mapping.organization_id,
                                      target=f"group:{mapping.group}"[:240],
                                      details={"from": previous, "to": clean.value})
    return mapping


def remove_mapping(mapping: GroupRoleMapping, *, granted_by_owner: bool) -> None:
    if mapping.role == Role.OWNER and not granted_by_owner:
        raise Forbidden("only an owner can remove a mapping to the owner role")
    with transaction.atomic():
        mapping.delete()
        extensions.record_admin_event("sso.role_mapping_removed",
                                      organization_id=mapping.organization_id,
                                      target=f"group:{mapping.group}"[:240])


def get_connection(org: Organization, model: type[OidcConnection] | type[SamlConnection]
                   ) -> Any:
    connection = model.objects.for_org(org).first()
    if connection is None:
        label = "OIDC" if model is OidcConnection else "SAML"
        raise NotFound(f"no {label} connection is set up for this organization")
    return connection


@transaction.atomic
def rotate_secrets() -> int:
    """Re-encrypt every stored SSO secret under the current SECRET_KEY; returns how many."""
    changed = 0
    for oidc_connection in OidcConnection.objects.select_for_update():
        token = oidc_connection.client_secret_encrypted
        if not crypto.is_current(token):
            oidc_connection.client_secret_encrypted = crypto.rotate(token)
            oidc_connection.save(update_fields=["client_secret_encrypted"])
            changed += 1
    for saml_connection in SamlConnection.objects.select_for_update():
        token = saml_connection.sp_private_key_encrypted
        if not crypto.is_current(token):
            saml_connection.sp_private_key_encrypted = crypto.rotate(token)
            saml_connection.save(update_fields=["sp_private_key_encrypted"])
            changed += 1
    return changed
