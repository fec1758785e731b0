# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The licence file: issue and verify round trip, and a precise refusal for each defect."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from potluck_enterprise.licensing import format
from potluck_enterprise.licensing.format import LicenceError, Reason
from potluck_enterprise.licensing.licence import Licence

# The conftest's issuer signs licences issued at EPOCH unless told otherwise.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
NOW = EPOCH + timedelta(days=1)


@pytest.fixture(autouse=True)
def same_epoch(issuer):
    assert issuer.epoch == EPOCH


def envelope_of(text: str) -> dict:
    return format.unarmor(text)


def rearmor(envelope: dict) -> str:
    return format.armor(envelope)


def refusal(text: str | bytes, now: datetime = NOW) -> LicenceError:
    with pytest.raises(LicenceError) as caught:
        format.verify(text, now=now)
    return caught.value


def test_an_issued_licence_verifies_to_the_same_fields(issuer):
    text = issuer.licence(features=["sso", "credits"], seats=25, grace_days=7)
    licence = format.verify(text, now=NOW)
    assert licence == Licence(
        version=1, license_id="lic-test-0001", licensee="Acme Corp", organization="Acme",
        features=("sso", "credits"), seats=25, issued_at=EPOCH,
        expires_at=EPOCH + timedelta(days=365), grace_days=7)
    assert licence.grace_ends_at == EPOCH + timedelta(days=372)
    # And a Licence issued by the helper reads back equal to itself.
    assert format.verify(format.issue(licence, issuer.private_key), now=NOW) == licence


def test_the_file_is_a_header_base64_lines_and_a_footer(issuer):
    text = issuer.licence()
    lines = text.splitlines()
    assert lines[0] == "-----BEGIN POTLUCK LICENSE-----"
    assert lines[-1] == "-----END POTLUCK LICENSE-----"
    assert all(len(line) <= 64 for line in lines[1:-1])
    envelope = json.loads(base64.b64decode("".join(lines[1:-1])))
    assert set(envelope) == {"alg", "payload", "sig"}
    assert envelope["alg"] == "ed25519"
    assert len(base64.b64decode(envelope["sig"])) == 64


def test_the_signature_covers_canonical_json_so_key_order_does_not_matter(issuer):
    envelope = envelope_of(issuer.licence())
    reordered = dict(reversed(list(envelope["payload"].items())))
    assert list(reordered) != list(envelope["payload"])
    assert format.verify(rearmor({**envelope, "payload": reordered}), now=NOW).seats == 10


def test_mail_mangling_around_the_armor_is_tolerated(issuer):
    text = issuer.licence()
    mangled = "\n\n" + "\r\n".join("   " + line + "  " for line in text.splitlines()) + "\n\n"
    assert format.verify(mangled, now=NOW).license_id == "lic-test-0001"
    assert format.verify(text.encode(), now=NOW).license_id == "lic-test-0001"


@pytest.mark.parametrize(("text", "message"), [
    ("", "must start with the line -----BEGIN POTLUCK LICENSE-----"),
    ("hello", "must start with the line -----BEGIN POTLUCK LICENSE-----"),
    ("-----BEGIN POTLUCK LICENSE-----\nabcd\n",
     "must end with the line -----END POTLUCK LICENSE-----"),
    ("-----BEGIN POTLUCK LICENSE-----\n-----END POTLUCK LICENSE-----",
     "empty between its header and footer"),
    ("-----BEGIN POTLUCK LICENSE-----\nnot base64!\n-----END POTLUCK LICENSE-----",
     "not valid base64"),
    ("-----BEGIN POTLUCK LICENSE-----\n" + base64.b64encode(b"{nope").decode()
     + "\n-----END POTLUCK LICENSE-----", "not JSON"),
    ("-----BEGIN POTLUCK LICENSE-----\n" + base64.b64encode(b"[1, 2]").decode()
     + "\n-----END POTLUCK LICENSE-----", "not a JSON object"),
])
def test_malformed_armor_base64_or_json_is_refused(issuer, text, message):
    error = refusal(text)
    assert error.reason is Reason.MALFORMED
    assert message in error.message
    assert error.field == "license"


def test_non_utf8_and_oversized_files_are_refused(issuer):
    assert "not UTF-8" in refusal(b"\xff\xfe-----BEGIN").message
    assert "at most 64 KiB" in refusal("x" * (65 * 1024)).message


def test_a_repeated_json_key_is_refused(issuer):
    envelope = envelope_of(issuer.licence())
    raw = json.dumps(envelope)[:-1] + ', "alg": "ed25519"}'
    text = format.HEADER + "\n" + base64.b64encode(raw.encode()).decode() + "\n" + format.FOOTER
    error = refusal(text)
    assert (error.reason, error.message) == (Reason.MALFORMED,
                                             "the licence's JSON repeats the key 'alg'")


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: e.pop("sig"), "the licence envelope lacks 'sig'"),
    (lambda e: e.pop("payload"), "the licence envelope lacks 'payload'"),
    (lambda e: e.update(kid="x"), "the licence envelope has an unexpected field 'kid'"),
    (lambda e: e.update(sig=123), "the licence signature is not a base64 string"),
    (lambda e: e.update(sig="***"), "the licence signature is not valid base64"),
    (lambda e: e.update(sig=base64.b64encode(b"short").decode()),
     "the licence signature is not an Ed25519 signature (64 bytes)"),
    (lambda e: e.update(payload="text"), "the licence payload is not a JSON object"),
])
def test_a_malformed_envelope_is_refused(issuer, change, message):
    envelope = envelope_of(issuer.licence())
    change(envelope)
    error = refusal(rearmor(envelope))
    assert (error.reason, error.message) == (Reason.MALFORMED, message)


def test_an_unknown_algorithm_is_refused(issuer):
    envelope = envelope_of(issuer.licence())
    error = refusal(rearmor({**envelope, "alg": "rsa-pss"}))
    assert error.reason is Reason.UNKNOWN_ALG
    assert error.message == ("unknown signature algorithm 'rsa-pss'; licences are signed "
                             "with 'ed25519'")


@pytest.mark.parametrize(("field", "value"), [
    ("seats", 10000), ("features", ["sso", "billing", "credits", "compliance"]),
    ("expires_at", "2099-01-01T00:00:00Z"), ("licensee", "Someone Else"),
])
def test_a_tampered_payload_is_refused(issuer, field, value):
    envelope = envelope_of(issuer.licence())
    envelope["payload"][field] = value
    error = refusal(rearmor(envelope))
    assert error.reason is Reason.BAD_SIGNATURE
    assert error.message.startswith("the signature does not match the issuer's key")


def test_a_licence_signed_with_another_key_is_refused(issuer):
    other_private, _ = format.generate_key_pair()
    text = format.sign(issuer.payload(), format.load_private_key(other_private))
    error = refusal(text)
    assert error.reason is Reason.BAD_SIGNATURE
    assert "signature does not match the issuer's key" in error.message


def test_a_flipped_signature_bit_is_refused(issuer):
    envelope = envelope_of(issuer.licence())
    sig = bytearray(base64.b64decode(envelope["sig"]))
    sig[0] ^= 1
    envelope["sig"] = base64.b64encode(bytes(sig)).decode()
    assert refusal(rearmor(envelope)).reason is Reason.BAD_SIGNATURE


def test_an_unknown_format_version_is_refused_even_when_signed(issuer):
    error = refusal(issuer.licence(version=3, seats_per_org=5))
    assert error.reason is Reason.UNKNOWN_VERSION
    assert error.message == ("licence format version 3 is not supported; this Potluck reads "
                             "versions 1 and 2")


def test_a_missing_field_is_refused(issuer):
    payload = issuer.payload()
    del payload["seats"]
    error = refusal(format.sign(payload, issuer.private_key))
    assert (error.reason, error.message) == (Reason.INVALID_FIELD,
                                             "the licence lacks the field 'seats'")


def test_a_missing_version_is_refused(issuer):
    payload = issuer.payload()
    del payload["version"]
    error = refusal(format.sign(payload, issuer.private_key))
    assert (error.reason, error.message) == (Reason.INVALID_FIELD,
                                             "the licence lacks the field 'version'")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"version": "1"}, "the licence field 'version' must be a whole number"),
    ({"extra": 1}, "unexpected field 'extra' in a version 1 licence"),
    ({"seats": 0}, "the licence field 'seats' must be between 1 and 10000000"),
    ({"seats": "10"}, "the licence field 'seats' must be a whole number"),
    ({"seats": True}, "the licence field 'seats' must be a whole number"),
    ({"seats": 10.5}, "the licence field 'seats' must be a whole number"),
    ({"grace_days": -1}, "the licence field 'grace_days' must be between 0 and 365"),
    ({"licensee": "  "}, "the licence field 'licensee' is empty"),
    ({"licensee": None}, "the licence field 'licensee' must be text"),
    ({"license_id": "a b"}, "the licence field 'license_id' may hold only letters, digits, "
                            "'.', '_' and '-'"),
    ({"features": "sso"}, "the licence field 'features' must be a list of names"),
    ({"features": ["SSO!"]}, "the licence grants a feature with an invalid name: 'SSO!'"),
    ({"features": ["sso", "sso"]}, "the licence field 'features' names a feature twice"),
    ({"issued_at": "yesterday"}, "the licence field 'issued_at' must be an ISO 8601 time"),
    ({"expires_at": 1767225600}, "the licence field 'expires_at' must be an ISO 8601 time"),
    ({"expires_at": "2027-01-01T00:00:00"},
     "the licence field 'expires_at' must carry a time zone (e.g. Z)"),
    ({"expires_at": "2025-12-31T00:00:00Z"}, "the licence expires before it is issued"),
])
def test_an_invalid_field_is_refused_precisely(issuer, overrides, message):
    error = refusal(issuer.licence(**overrides))
    assert (error.reason, error.message) == (Reason.INVALID_FIELD, message)


def test_a_licence_from_the_future_is_refused_until_the_clock_passes_issued_at(issuer):
    text = issuer.licence(issued_at=datetime(2026, 6, 1, tzinfo=UTC))
    error = refusal(text, now=datetime(2026, 5, 31, 23, 59, tzinfo=UTC))
    assert error.reason is Reason.NOT_YET_VALID
    assert error.message == ("the licence is issued at 2026-06-01T00:00:00Z, later than this "
                             "server's clock (2026-05-31T23:59:00+00:00): check the clock")
    assert format.verify(text, now=datetime(2026, 6, 1, tzinfo=UTC)).seats == 10


def test_expiry_is_a_state_not_a_refusal(issuer):
    licence = format.verify(issuer.licence(days=30), now=EPOCH + timedelta(days=400))
    assert licence.state_at(EPOCH + timedelta(days=400)) == "expired"
