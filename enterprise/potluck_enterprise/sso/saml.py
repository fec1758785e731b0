# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""SAML 2.0 service provider on pysaml2 (signatures checked by xmlsec1).

Each connection has its own SP key pair, generated here; the private key is decrypted
into a private temporary file only for the duration of one pysaml2 operation (xmlsec1
reads keys from files). Signed assertions are always required; pysaml2 checks the
signature against the IdP metadata's certificate, the audience, the recipient and
destination, NotBefore/NotOnOrAfter and InResponseTo against the request we issued.
Replays are refused through ``SeenAssertion``.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import defusedxml.ElementTree as SafeET
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.db import IntegrityError, transaction
from django.utils import timezone
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.response import StatusError, UnsolicitedResponse
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_UNSPECIFIED
from saml2.sigver import SignatureError, get_xmlsec_binary
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from potluck.errors import InvalidInput
from potluck_enterprise.sso.models import SamlConnection, SeenAssertion
from potluck_enterprise.sso.provisioning import Identity, groups_from

log = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 60
REQUEST_MAX_AGE_SECONDS = 600
SP_CERT_DAYS = 3650
NS = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "samlp": "urn:oasis:names:tc:SAML:2.0:protocol"}
EMAIL_ATTRIBUTE_FALLBACKS = ("email", "mail", "emailAddress",
                             "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")


class SamlFailure(InvalidInput):
    """The IdP's answer cannot be trusted (signature, audience, expiry, replay, request)."""


def generate_sp_keypair(common_name: str) -> tuple[str, str]:
    """A fresh RSA-2048 key and a self-signed certificate for it, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "potluck-sp")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=SP_CERT_DAYS))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def parse_idp_metadata(xml: str) -> str:
    """The IdP's entity id, after checking the metadata is usable for SP-initiated login."""
    try:
        root = SafeET.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
    except Exception as exc:  # defusedxml raises several types for bad or hostile XML
        raise InvalidInput("the IdP metadata is not well-formed XML", field="idp_metadata_xml"
                           ) from exc
    if root.tag == f"{{{NS['md']}}}EntitiesDescriptor":
        descriptors = root.findall("md:EntityDescriptor", NS)
        if len(descriptors) != 1:
            raise InvalidInput("the IdP metadata must describe exactly one entity",
                               field="idp_metadata_xml")
        root = descriptors[0]
    if root.tag != f"{{{NS['md']}}}EntityDescriptor" or not root.get("entityID"):
        raise InvalidInput("the IdP metadata has no EntityDescriptor with an entityID",
                           field="idp_metadata_xml")
    idp = root.find("md:IDPSSODescriptor", NS)
    if idp is None:
        raise InvalidInput("the metadata describes no identity provider (IDPSSODescriptor)",
                           field="idp_metadata_xml")
    bindings = {e.get("Binding") for e in idp.findall("md:SingleSignOnService", NS)}
    if BINDING_HTTP_REDIRECT not in bindings:
        raise InvalidInput("the IdP offers no SingleSignOnService with the HTTP-Redirect "
                           "binding", field="idp_metadata_xml")
    signing = [k for k in idp.findall("md:KeyDescriptor", NS) if k.get("use") in (None, "signing")]
    if not signing:
        raise InvalidInput("the IdP metadata has no signing certificate (KeyDescriptor)",
                           field="idp_metadata_xml")
    return str(root.get("entityID"))


@dataclass(frozen=True)
class Endpoints:
    acs_url: str
    metadata_url: str


@contextmanager
def _client(connection: SamlConnection, endpoints: Endpoints) -> Iterator[Saml2Client]:
    """A pysaml2 SP for this connection, with its key in a private temp file meanwhile."""
    with tempfile.TemporaryDirectory(prefix="potluck-saml-") as folder:  # mode 0700
        key_path = os.path.join(folder, "sp.key")
        cert_path = os.path.join(folder, "sp.crt")
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(connection.sp_private_key)
        with open(cert_path, "w") as handle:
            handle.write(connection.sp_certificate)
        config = SPConfig()
        config.load({
            "entityid": connection.sp_entity_id,
            "xmlsec_binary": get_xmlsec_binary(["/usr/bin", "/usr/local/bin"]),
            "service": {"sp": {
                "endpoints": {"assertion_consumer_service": [(endpoints.acs_url,
                                                              BINDING_HTTP_POST)]},
                "allow_unsolicited": False,
                "authn_requests_signed": True,
                "want_assertions_signed": connection.want_assertions_signed,
                "want_response_signed": False,
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_UNSPECIFIED],
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
            }},
            "metadata": {"inline": [connection.idp_metadata_xml]},
            "key_file": key_path,
            "cert_file": cert_path,
            "encryption_keypairs": [{"key_file": key_path, "cert_file": cert_path}],
            "accepted_time_diff": CLOCK_SKEW_SECONDS,
            "allow_unknown_attributes": True,
        })
        yield Saml2Client(config=config)


def sp_metadata(connection: SamlConnection, endpoints: Endpoints) -> str:
    with _client(connection, endpoints) as client:
        return create_metadata_string(None, config=client.config, valid=None, sign=False
                                      ).decode("utf-8")


@dataclass(frozen=True)
class Started:
    redirect_url: str
    request_id: str


def start(connection: SamlConnection, endpoints: Endpoints, relay_state: str) -> Started:
    with _client(connection, endpoints) as client:
        request_id, info = client.prepare_for_authenticate(
            entityid=connection.idp_entity_id, relay_state=relay_state,
            binding=BINDING_HTTP_REDIRECT, sigalg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    location = dict(info["headers"])["Location"]
    return Started(redirect_url=location, request_id=str(request_id))


def _unverified_root(saml_response: str) -> Any:
    try:
        return SafeET.fromstring(base64.b64decode(saml_response, validate=False))
    except Exception:  # unreadable: pysaml2 refuses it with its own reason
        return None


def in_response_to(saml_response: str) -> str | None:
    """The request id a (still unverified) response claims to answer; for lookup only."""
    root = _unverified_root(saml_response)
    return root.get("InResponseTo") if root is not None else None


_FAILURES: list[tuple[tuple[str, ...], str]] = [
    (("signature",), "the SAML assertion's signature is not valid"),
    (("audience",), "the SAML assertion is meant for another service provider (audience)"),
    (("too old", "lifetime", "can't use response", "not on or after", "expired"),
     "the SAML assertion has expired"),
    (("too early", "not before"), "the SAML assertion is not valid yet"),
    (("unsolicited", "don't recall", "came from"),
     "the SAML response does not answer a sign-in started here"),
    (("recipient",), "the SAML assertion is meant for another recipient"),
    (("destination",), "the SAML response is meant for another destination"),
]


def _explain(exc: Exception) -> str:
    text = f"{exc.__class__.__name__} {exc}".lower()
    if isinstance(exc, SignatureError):
        return "the SAML assertion's signature is not valid"
    if isinstance(exc, UnsolicitedResponse):
        return "the SAML response does not answer a sign-in started here"
    if isinstance(exc, StatusError):
        return f"the identity provider refused the sign-in ({exc})"
    for needles, message in _FAILURES:
        if any(n in text for n in needles):
            return message
    return "the SAML response is not valid"


def _attribute(ava: dict[str, list[Any]], name: str) -> list[Any]:
    if not name:
        return []
    if name in ava:
        return list(ava[name])
    lowered = {k.lower(): v for k, v in ava.items()}
    return list(lowered.get(name.lower(), []))


def finish(connection: SamlConnection, endpoints: Endpoints, saml_response: str,
           request_id: str | None) -> Identity:
    """Verify the response (``request_id``: the outstanding request it must answer)."""
    outstanding = {request_id: "/"} if request_id else {}
    root = _unverified_root(saml_response)
    destination = root.get("Destination") if root is not None else None
    if destination and destination != endpoints.acs_url:
        # pysaml2 refuses it too, without saying why; this says why.
        raise SamlFailure("the SAML response is addressed to another service provider "
                          "(Destination)")
    with _client(connection, endpoints) as client:
        try:
            response = client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding=outstanding)
        except Exception as exc:  # pysaml2 raises bare Exceptions for several checks
            log.info("sso: SAML response refused: %s: %s", exc.__class__.__name__, exc)
            raise SamlFailure(_explain(exc)) from exc
    if response is None or response.assertion is None:
        raise SamlFailure("the SAML response carries no assertion")
    assertion = response.assertion
    if getattr(assertion, "signature", None) is None:  # belt and braces: pysaml2 checks it
        raise SamlFailure("the SAML assertion's signature is not valid")
    _remember(connection, str(response.issuer()), str(assertion.id), response)
    ava = response.get_identity() or {}
    name_id = response.name_id
    emails = _attribute(ava, connection.email_attribute) or next(
        (_attribute(ava, n) for n in EMAIL_ATTRIBUTE_FALLBACKS if _attribute(ava, n)), [])
    email = str(emails[0]) if emails else ""
    if not email and name_id is not None and "@" in str(name_id.text or ""):
        email = str(name_id.text)
    org_values = _attribute(ava, connection.org_claim) if connection.org_claim else None
    return Identity(
        protocol="saml", subject=str(name_id.text if name_id is not None else email),
        email=email, groups=groups_from(_attribute(ava, connection.groups_claim)),
        org_claim=org_values,
    )


def _remember(connection: SamlConnection, issuer: str, assertion_id: str, response: Any
              ) -> None:
    """Record the assertion as used; a second use of the same one is a replay."""
    now = timezone.now()
    not_on_or_after = getattr(response, "not_on_or_after", 0) or 0
    expires = (datetime.fromtimestamp(not_on_or_after, tz=UTC) if not_on_or_after
               else now + timedelta(seconds=REQUEST_MAX_AGE_SECONDS))
    expires = max(expires, now) + timedelta(seconds=CLOCK_SKEW_SECONDS)
    SeenAssertion.objects.filter(expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            SeenAssertion.objects.create(organization_id=connection.organization_id,
                                         idp_entity_id=issuer or connection.idp_entity_id,
                                         assertion_id=assertion_id, expires_at=expires)
    except IntegrityError:
        raise SamlFailure("this SAML assertion was already used (replay)") from None
