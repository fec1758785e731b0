# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The licence file: armored text around base64 of a signed JSON envelope.

::

    -----BEGIN POTLUCK LICENSE-----
    base64 of {"alg": "ed25519", "payload": {...}, "sig": "<base64 signature>"}
    -----END POTLUCK LICENSE-----

The signature covers the canonical JSON of the payload (sorted keys, no spaces, UTF-8).
Format version 1 is an unbound licence; version 2 adds ``installation_id`` and is valid
only on that installation (``verify(..., installation_id=...)`` refuses it elsewhere with
``Reason.WRONG_INSTALLATION``).
Verification is offline, against the issuer's public key that ships beside this module;
``ISSUER_PUBLIC_KEY`` is the only key production reads (no setting or variable replaces
it; tests swap the module attribute). Pure Python (no Django).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from potluck.errors import InvalidInput
from potluck_enterprise.licensing.licence import (
    BOUND_FORMAT_VERSION,
    SUPPORTED_VERSIONS,
    Licence,
)

HEADER = "-----BEGIN POTLUCK LICENSE-----"
FOOTER = "-----END POTLUCK LICENSE-----"
ALG = "ed25519"
MAX_TEXT_BYTES = 64 * 1024
PUBLIC_KEY_FILE = Path(__file__).with_name("license-public-key.pem")
ISSUER_PUBLIC_KEY: bytes = PUBLIC_KEY_FILE.read_bytes()

_ENVELOPE_FIELDS = ("alg", "payload", "sig")
_PAYLOAD_FIELDS = ("version", "license_id", "licensee", "organization", "features", "seats",
                   "issued_at", "expires_at", "grace_days")
_FIELDS_BY_VERSION = {1: _PAYLOAD_FIELDS, 2: (*_PAYLOAD_FIELDS, "installation_id")}
_LICENSE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# What an installation id looks like (``installation.generate``: ``inst_`` + 26 base32
# characters); the format accepts any id of this shape, so the scheme may change.
INSTALLATION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{7,99}$")
_FEATURE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
MAX_SEATS = 10_000_000
MAX_GRACE_DAYS = 365


class Reason(enum.StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_ALG = "unknown_alg"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_VERSION = "unknown_version"
    INVALID_FIELD = "invalid_field"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_INSTALLATION = "wrong_installation"


class LicenceError(InvalidInput):
    """A licence refused, with the reason in words (``message``) and as a code (``reason``)."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message, field="license")
        self.reason = reason


# -- keys -------------------------------------------------------------------------------

def issuer_public_key() -> Ed25519PublicKey:
    return load_public_key(ISSUER_PUBLIC_KEY)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a PEM public key: {exc}", field="key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("the public key is not an Ed25519 key", field="key")
    return key


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not an unencrypted PEM private key: {exc}", field="key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("the private key is not an Ed25519 key", field="key")
    return key


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new issuer key pair as (private PEM, public PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_pem, public_pem


# -- encoding ---------------------------------------------------------------------------

def canonical_json(payload: dict[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def armor(envelope: dict[str, Any]) -> str:
    body = base64.b64encode(json.dumps(envelope, separators=(",", ":")).encode()).decode()
    return "\n".join([HEADER, *textwrap.wrap(body, 64), FOOTER]) + "\n"


def sign(payload: dict[str, Any], private_key: Ed25519PrivateKey) -> str:
    """The licence file for ``payload``, signed with the issuer's private key."""
    signature = private_key.sign(canonical_json(payload))
    return armor({"alg": ALG, "payload": payload,
                  "sig": base64.b64encode(signature).decode()})


def issue(licence: Licence, private_key: Ed25519PrivateKey) -> str:
    return sign(licence.to_payload(), private_key)


# -- decoding and verification ----------------------------------------------------------

def _malformed(message: str) -> LicenceError:
    return LicenceError(Reason.MALFORMED, message)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _malformed(f"the licence's JSON repeats the key {key!r}")
        seen[key] = value
    return seen


def unarmor(text: str | bytes) -> dict[str, Any]:
    """The envelope inside the armor; ``LicenceError(MALFORMED)`` for anything else."""
    if isinstance(text, bytes):
        if len(text) > MAX_TEXT_BYTES:
            raise _malformed(f"a licence file is at most {MAX_TEXT_BYTES // 1024} KiB")
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise _malformed("the licence is not UTF-8 text") from None
    if len(text) > MAX_TEXT_BYTES:
        raise _malformed(f"a licence file is at most {MAX_TEXT_BYTES // 1024} KiB")
    lines = [line.strip() for line in text.strip().splitlines()]
    if not lines or lines[0] != HEADER:
        raise _malformed(f"the licence must start with the line {HEADER}")
    if len(lines) < 2 or lines[-1] != FOOTER:
        raise _malformed(f"the licence must end with the line {FOOTER}")
    body = "".join(lines[1:-1])
    if not body:
        raise _malformed("the licence is empty between its header and footer")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("the text between the header and footer is not valid base64") from None
    try:
        envelope = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _malformed("the decoded licence is not JSON") from None
    if not isinstance(envelope, dict):
        raise _malformed("the decoded licence is not a JSON object")
    for name in _ENVELOPE_FIELDS:
        if name not in envelope:
            raise _malformed(f"the licence envelope lacks {name!r}")
    extra = sorted(set(envelope) - set(_ENVELOPE_FIELDS))
    if extra:
        raise _malformed(f"the licence envelope has an unexpected field {extra[0]!r}")
    return envelope


def _check_signature(envelope: dict[str, Any], public_key: Ed25519PublicKey) -> None:
    alg = envelope["alg"]
    if alg != ALG:
        raise LicenceError(Reason.UNKNOWN_ALG,
                           f"unknown signature algorithm {alg!r}; licences are signed with "
                           f"{ALG!r}")
    payload, sig = envelope["payload"], envelope["sig"]
    if not isinstance(payload, dict):
        raise _malformed("the licence payload is not a JSON object")
    if not isinstance(sig, str):
        raise _malformed("the licence signature is not a base64 string")
    try:
        signature = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("the licence signature is not valid base64") from None
    if len(signature) != 64:
        raise _malformed("the licence signature is not an Ed25519 signature (64 bytes)")
    try:
        body = canonical_json(payload)
    except ValueError:  # NaN or infinity: not JSON that an issuer writes
        raise _malformed("the licence payload holds a number that JSON does not allow") from None
    try:
        public_key.verify(signature, body)
    except InvalidSignature:
        raise LicenceError(Reason.BAD_SIGNATURE,
                           "the signature does not match the issuer's key: the licence was "
                           "altered, or not issued for Potluck") from None


def _invalid(message: str) -> LicenceError:
    return LicenceError(Reason.INVALID_FIELD, message)


def _text(payload: dict[str, Any], name: str, *, max_length: int, blank: bool = False) -> str:
    value = payload[name]
    if not isinstance(value, str):
        raise _invalid(f"the licence field {name!r} must be text")
    if not blank and not value.strip():
        raise _invalid(f"the licence field {name!r} is empty")
    if len(value) > max_length:
        raise _invalid(f"the licence field {name!r} is longer than {max_length} characters")
    return value


def _integer(payload: dict[str, Any], name: str, *, low: int, high: int) -> int:
    value = payload[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(f"the licence field {name!r} must be a whole number")
    if not low <= value <= high:
        raise _invalid(f"the licence field {name!r} must be between {low} and {high}")
    return value


def _moment(payload: dict[str, Any], name: str) -> datetime:
    value = payload[name]
    try:
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(f"the licence field {name!r} must be an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise _invalid(f"the licence field {name!r} must carry a time zone (e.g. Z)")
    return moment


def _features(payload: dict[str, Any]) -> tuple[str, ...]:
    value = payload["features"]
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise _invalid("the licence field 'features' must be a list of names")
    for feature in value:
        if not _FEATURE_RE.match(feature):
            raise _invalid(f"the licence grants a feature with an invalid name: {feature!r}")
    if len(set(value)) != len(value):
        raise _invalid("the licence field 'features' names a feature twice")
    return tuple(value)


def parse_payload(payload: dict[str, Any]) -> Licence:
    """The typed licence of a payload whose signature was checked."""
    version = payload.get("version")
    if version is None:
        raise _invalid("the licence lacks the field 'version'")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _invalid("the licence field 'version' must be a whole number")
    if version not in SUPPORTED_VERSIONS:
        readable = " and ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise LicenceError(Reason.UNKNOWN_VERSION,
                           f"licence format version {version} is not supported; this Potluck "
                           f"reads versions {readable}")
    fields = _FIELDS_BY_VERSION[version]
    for name in fields:
        if name not in payload:
            raise _invalid(f"the licence lacks the field {name!r}")
    extra = sorted(set(payload) - set(fields))
    if extra:
        raise _invalid(f"unexpected field {extra[0]!r} in a version {version} licence")
    installation_id = None
    if version == BOUND_FORMAT_VERSION:
        installation_id = _text(payload, "installation_id", max_length=100)
        if not INSTALLATION_ID_RE.match(installation_id):
            raise _invalid("the licence field 'installation_id' is not an installation id "
                           "(8 to 100 letters, digits, '.', '_' or '-')")
    license_id = _text(payload, "license_id", max_length=100)
    if not _LICENSE_ID_RE.match(license_id):
        raise _invalid("the licence field 'license_id' may hold only letters, digits, '.', "
                       "'_' and '-'")
    issued_at, expires_at = _moment(payload, "issued_at"), _moment(payload, "expires_at")
    if expires_at <= issued_at:
        raise _invalid("the licence expires before it is issued")
    return Licence(
        version=version,
        license_id=license_id,
        licensee=_text(payload, "licensee", max_length=200).strip(),
        organization=_text(payload, "organization", max_length=200, blank=True).strip(),
        features=_features(payload),
        seats=_integer(payload, "seats", low=1, high=MAX_SEATS),
        issued_at=issued_at,
        expires_at=expires_at,
        grace_days=_integer(payload, "grace_days", low=0, high=MAX_GRACE_DAYS),
        installation_id=installation_id,
    )


def verify(text: str | bytes, *, now: datetime,
           public_key: Ed25519PublicKey | None = None,
           installation_id: str | None = None) -> Licence:
    """The licence in ``text`` if it is well formed, signed by the issuer, already issued
    and, when bound to an installation, bound to ``installation_id``.

    ``installation_id``: this installation's id (``installation.current_id()``); every
    installation passes it. None skips the binding check (the issuer checking what it
    signed). Raises ``LicenceError`` with a precise reason otherwise. Expiry is not
    checked here: it is a state (``Licence.state_at``), not a refusal.
    """
    envelope = unarmor(text)
    _check_signature(envelope, public_key or issuer_public_key())
    licence = parse_payload(envelope["payload"])
    if installation_id is not None and licence.installation_id is not None \
            and licence.installation_id != installation_id:
        raise LicenceError(
            Reason.WRONG_INSTALLATION,
            f"this licence is bound to installation {licence.installation_id}, and this is "
            f"installation {installation_id}: get a licence issued for {installation_id} "
            "(the Enterprise page's store link carries it), or an unbound licence for an "
            "air-gapped site")
    if now < licence.issued_at:
        raise LicenceError(
            Reason.NOT_YET_VALID,
            f"the licence is issued at {envelope['payload']['issued_at']}, later than this "
            f"server's clock ({now.isoformat(timespec='seconds')}): check the clock")
    return licence
