# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""An in-process SAML 2.0 identity provider for the tests: pysaml2's ``Server`` signing
real assertions with xmlsec1, with its own key pair made for the test.

The IdP reads the SP's AuthnRequest from the redirect Potluck sent the browser to
(verifying its signature against the SP metadata Potluck serves) and answers with a
signed assertion, as a browser would POST it to the ACS.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import saml2.assertion
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, time_util
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import get_xmlsec_binary

IDP_ENTITY_ID = "https://idp.corp.test/saml/metadata"
IDP_SSO_URL = "https://idp.corp.test/saml/sso"


def write_keypair(folder: Path, name: str) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@contextmanager
def issued_earlier(seconds: int) -> Iterator[None]:
    """Make the IdP write its assertion's times as if it had issued it ``seconds`` ago."""
    if not seconds:
        yield
        return
    original_instant, original_in_a_while = saml2.assertion.instant, saml2.assertion.in_a_while

    def instant(format: str = time_util.TIME_FORMAT, time_stamp: int = 0) -> str:
        return time_util.instant(format, (time_stamp or int(time.time())) - seconds)

    def in_a_while(format: str = time_util.TIME_FORMAT, **delta: int) -> str:
        moment = time_util.time_in_a_while(**delta) - timedelta(seconds=seconds)
        return moment.strftime(format)

    saml2.assertion.instant, saml2.assertion.in_a_while = instant, in_a_while
    try:
        yield
    finally:
        saml2.assertion.instant = original_instant
        saml2.assertion.in_a_while = original_in_a_while


class SamlIdp:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.key_path, self.cert_path = write_keypair(folder, "idp")
        # The same entity id with a key the published metadata does not hold.
        self.rogue_key_path, self.rogue_cert_path = write_keypair(folder, "rogue")
        self.sp_metadata: str | None = None

    def _config(self, *, rogue: bool = False) -> IdPConfig:
        key, cert = ((self.rogue_key_path, self.rogue_cert_path) if rogue
                     else (self.key_path, self.cert_path))
        config = IdPConfig()
        config.load({
            "entityid": IDP_ENTITY_ID,
            "xmlsec_binary": get_xmlsec_binary(["/usr/bin", "/usr/local/bin"]),
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [(IDP_SSO_URL, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "want_authn_requests_signed": True,
                "policy": {"default": {"lifetime": {"minutes": 5},
                                       "attribute_restrictions": None}},
            }},
            "metadata": {"inline": [self.sp_metadata]} if self.sp_metadata else {},
            "key_file": str(key),
            "cert_file": str(cert),
            "allow_unknown_attributes": True,
        })
        return config

    def metadata_xml(self) -> str:
        return create_metadata_string(None, config=self._config(), valid=None, sign=False
                                      ).decode("utf-8")

    def parse_request(self, redirect_url: str) -> Any:
        """The AuthnRequest in the redirect (its signature checked against the SP metadata)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(redirect_url).query).items()}
        server = Server(config=self._config())
        parsed = server.parse_authn_request(
            query["SAMLRequest"], BINDING_HTTP_REDIRECT, relay_state=query.get("RelayState"),
            sigalg=query.get("SigAlg"), signature=query.get("Signature"))
        return parsed, query.get("RelayState")

    def respond(self, redirect_url: str, email: str, *, groups: list[str] | None = None,
                extra: dict[str, list[str]] | None = None, audience: str | None = None,
                in_response_to: str | None = "request", issued_minutes_ago: int = 0,
                sign_assertion: bool = True, rogue_key: bool = False,
                destination: str | None = None) -> dict[str, str]:
        """The form fields a browser posts to the ACS: SAMLResponse and RelayState."""
        parsed, relay_state = self.parse_request(redirect_url)
        request = parsed.message
        sp_entity_id = request.issuer.text
        server = Server(config=self._config(rogue=rogue_key))
        identity = {"email": [email], **({"groups": groups} if groups else {}),
                    **(extra or {})}
        with issued_earlier(issued_minutes_ago * 60):
            xml = server.create_authn_response(
                identity,
                in_response_to=request.id if in_response_to == "request" else in_response_to,
                destination=destination or request.assertion_consumer_service_url,
                sp_entity_id=audience or sp_entity_id,
                name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
                authn={"class_ref": AUTHN_PASSWORD_PROTECTED},
                sign_assertion=sign_assertion, sign_response=False,
            )
        return {"SAMLResponse": base64.b64encode(str(xml).encode("utf-8")).decode("ascii"),
                "RelayState": relay_state or ""}

    @staticmethod
    def tamper(fields: dict[str, str], old: str, new: str) -> dict[str, str]:
        """The same response with text changed after signing (the signature must break)."""
        xml = base64.b64decode(fields["SAMLResponse"]).decode("utf-8")
        assert old in xml
        return {**fields, "SAMLResponse": base64.b64encode(
            xml.replace(old, new).encode("utf-8")).decode("ascii")}


__all__ = ["BINDING_HTTP_POST", "IDP_ENTITY_ID", "SamlIdp"]
