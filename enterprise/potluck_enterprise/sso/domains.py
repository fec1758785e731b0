# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Verified email domains: claiming one, proving it (DNS TXT or an operator), enforcing SSO.

An organization proves a domain by publishing ``potluck-verification=<token>`` in a TXT
record at ``_potluck-verification.<domain>``; an operator (a superuser) may also mark it
verified. Until then a domain does nothing: it neither admits SSO users by their email
nor refuses password sign-in. A verified domain belongs to exactly one organization.
"""

from __future__ import annotations

import logging
import re
import secrets

import dns.exception
import dns.resolver
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from potluck import extensions
from potluck.accounts.models import Organization
from potluck.errors import Conflict, InvalidInput, NotFound
from potluck_enterprise.sso.models import EmailDomain, VerificationMethod

log = logging.getLogger(__name__)

TXT_PREFIX = "_potluck-verification"
TXT_VALUE_PREFIX = "potluck-verification="
DNS_TIMEOUT_SECONDS = 5.0
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"^(?:{_LABEL}\.)+[a-z]{{2,63}}$")


def clean_domain(domain: str) -> str:
    candidate = (domain or "").strip().lower().rstrip(".")
    try:
        candidate = candidate.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"{domain!r} is not a domain name", field="domain") from None
    if len(candidate) > 253 or not _DOMAIN_RE.match(candidate):
        raise InvalidInput(f"{domain!r} is not a domain name (e.g. example.com)",
                           field="domain")
    return candidate


def domain_of(email: str) -> str | None:
    _, at, domain = (email or "").strip().lower().rpartition("@")
    if not at:
        return None
    return domain.rstrip(".") or None


def txt_record_name(domain: EmailDomain) -> str:
    return f"{TXT_PREFIX}.{domain.domain}"


def txt_record_value(domain: EmailDomain) -> str:
    return f"{TXT_VALUE_PREFIX}{domain.verification_token}"


def add_domain(org: Organization, domain: str, *, enforce_sso: bool = False) -> EmailDomain:
    clean = clean_domain(domain)
    if enforce_sso:
        raise InvalidInput("verify the domain before enforcing SSO for it", field="enforce_sso")
    if EmailDomain.objects.for_org(org).filter(domain=clean).exists():
        raise Conflict(f"{clean} is already claimed by this organization", field="domain")
    try:
        with transaction.atomic():
            return EmailDomain.objects.create(
                organization=org, domain=clean, verification_token=secrets.token_urlsafe(24))
    except IntegrityError:  # a concurrent claim of the same domain won
        raise Conflict(f"{clean} is already claimed by this organization",
                       field="domain") from None


def get_domain(org: Organization, domain_id: object) -> EmailDomain:
    try:
        return EmailDomain.objects.for_org(org).get(pk=domain_id)
    except (EmailDomain.DoesNotExist, DjangoValidationError, ValueError, TypeError):
        raise NotFound("no such domain") from None


def _resolver() -> dns.resolver.Resolver:
    configured = list(getattr(settings, "SSO_DNS_NAMESERVERS", None) or [])
    if not configured:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        hosts: list[str] = []
        for entry in configured:
            host, _, port = str(entry).rpartition(":") if str(entry).count(":") == 1 else (
                str(entry), "", "")
            hosts.append(host)
            if port:
                resolver.port = int(port)
        resolver.nameservers = hosts
    resolver.lifetime = DNS_TIMEOUT_SECONDS
    return resolver


def published_tokens(domain_name: str) -> list[str]:
    """The verification values found in the domain's TXT record (empty when there is none)."""
    try:
        answer = _resolver().resolve(f"{TXT_PREFIX}.{domain_name}", "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return []
    except dns.exception.Timeout as exc:
        raise InvalidInput(f"DNS did not answer for {TXT_PREFIX}.{domain_name}; try again",
                           field="domain") from exc
    values: list[str] = []
    for record in answer:
        text = b"".join(record.strings).decode("utf-8", "replace").strip()
        if text.startswith(TXT_VALUE_PREFIX):
            values.append(text[len(TXT_VALUE_PREFIX):])
    return values


@transaction.atomic
def _mark_verified(domain: EmailDomain, method: VerificationMethod) -> EmailDomain:
    domain = EmailDomain.objects.select_for_update().get(pk=domain.pk)
    if domain.is_verified:
        return domain
    taken = (EmailDomain.objects.filter(domain=domain.domain, verified_at__isnull=False)
             .exclude(pk=domain.pk).exists())
    if taken:
        raise Conflict(f"{domain.domain} is already verified by another organization",
                       field="domain")
    domain.verified_at = timezone.now()
    domain.verification_method = method
    try:
        with transaction.atomic():
            domain.save(update_fields=["verified_at", "verification_method"])
    except IntegrityError:  # another organization verified it at the same moment
        raise Conflict(f"{domain.domain} is already verified by another organization",
                       field="domain") from None
    extensions.record_admin_event("sso.domain_verified",
                                  organization_id=domain.organization_id,
                                  target=f"domain:{domain.domain}", details={"method": method})
    log.info("email domain verified: %s for org %s (%s)", domain.domain,
             domain.organization_id, method)
    return domain


def verify_by_dns(domain: EmailDomain) -> EmailDomain:
    if domain.is_verified:
        return domain
    found = published_tokens(domain.domain)
    if not any(secrets.compare_digest(value, domain.verification_token) for value in found):
        raise InvalidInput(
            f"no TXT record {txt_record_value(domain)!r} at {txt_record_name(domain)} yet "
            "(DNS changes can take a while to show)", field="domain")
    return _mark_verified(domain, VerificationMethod.DNS)


def verify_by_operator(domain: EmailDomain) -> EmailDomain:
    """An operator's word that the organization owns the domain (no DNS check)."""
    return _mark_verified(domain, VerificationMethod.OPERATOR)


def set_enforcement(domain: EmailDomain, enforce: bool) -> EmailDomain:
    if enforce and not domain.is_verified:
        raise InvalidInput("verify the domain before enforcing SSO for it", field="enforce_sso")
    with transaction.atomic():
        domain.enforce_sso = enforce
        domain.save(update_fields=["enforce_sso"])
        extensions.record_admin_event("sso.enforcement_changed",
                                      organization_id=domain.organization_id,
                                      target=f"domain:{domain.domain}",
                                      details={"enforce_sso": enforce})
    return domain


def remove_domain(domain: EmailDomain) -> None:
    domain.delete()


def verified_domain_for(email: str) -> EmailDomain | None:
    """The verified domain (of whichever organization) that ``email`` belongs to."""
    name = domain_of(email)
    if not name:
        return None
    return (EmailDomain.objects.select_related("organization")
            .filter(domain=name, verified_at__isnull=False).first())
