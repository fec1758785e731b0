# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""`potluck-license keygen` and `issue`, and the issuer public key that ships in the code."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from potluck_enterprise.licensing import format
from potluck_enterprise.licensing.format import LicenceError, Reason
from potluck_enterprise.licensing.issuer_cli import PRIVATE_KEY_ENV, cli

REPO_ROOT = Path(__file__).resolve().parents[3]
VENDORED_KEY = REPO_ROOT.parent / "shared" / "vendor" / "license-public-key.pem"


def issuer_tool(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def keys(tmp_path) -> tuple[Path, Path]:
    private, public = tmp_path / "issuer.pem", tmp_path / "issuer.pub.pem"
    result = issuer_tool("keygen", "--private", str(private), "--public", str(public))
    assert result.exit_code == 0, result.output
    return private, public


def test_keygen_writes_a_private_key_only_its_owner_can_read(keys):
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    key = format.load_private_key(private.read_bytes())
    assert format.load_public_key(public.read_bytes()).public_bytes_raw() == \
        key.public_key().public_bytes_raw()


def test_keygen_refuses_to_overwrite(keys, tmp_path):
    private, public = keys
    before = private.read_bytes()
    result = issuer_tool("keygen", "--private", str(private),
                         "--public", str(tmp_path / "new.pub.pem"))
    assert result.exit_code == 1
    assert result.stderr == f"error: {private} already exists; not overwriting it\n"
    assert private.read_bytes() == before
    assert not (tmp_path / "new.pub.pem").exists()
    result = issuer_tool("keygen", "--private", str(tmp_path / "new.pem"),
                         "--public", str(public))
    assert result.exit_code == 1
    assert not (tmp_path / "new.pem").exists()


def test_issue_signs_a_licence_that_verifies_with_the_public_key(keys):
    private, public = keys
    result = issuer_tool("issue", "--licensee", "Acme Corp", "--organization", "Acme",
                         "--features", "sso,billing", "--seats", "25", "--days", "365",
                         "--grace-days", "30", "--license-id", "lic-acme-1",
                         "--key", str(private))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(format.HEADER)
    now = datetime.now(UTC)
    licence = format.verify(result.stdout, now=now + timedelta(seconds=1),
                            public_key=format.load_public_key(public.read_bytes()))
    assert (licence.license_id, licence.licensee, licence.organization) == (
        "lic-acme-1", "Acme Corp", "Acme")
    assert (licence.features, licence.seats, licence.grace_days) == (("sso", "billing"), 25, 30)
    assert licence.expires_at - licence.issued_at == timedelta(days=365)
    assert abs(licence.issued_at - now) < timedelta(minutes=5)


def test_issue_reads_the_key_from_the_environment_and_writes_out(keys, tmp_path):
    private, public = keys
    out = tmp_path / "acme.license"
    args = ("issue", "--licensee", "Acme", "--seats", "3", "--days", "30", "--out", str(out))
    result = issuer_tool(*args, env={PRIVATE_KEY_ENV: private.read_text()})
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    licence = format.verify(out.read_text(), now=datetime.now(UTC) + timedelta(seconds=1),
                            public_key=format.load_public_key(public.read_bytes()))
    assert (licence.organization, licence.features, licence.grace_days) == ("Acme", (), 14)
    again = issuer_tool(*args, env={PRIVATE_KEY_ENV: private.read_text()})
    assert again.exit_code == 1
    assert again.stderr == f"error: {out} already exists; not overwriting it\n"


def test_an_issued_licence_installs(keys, db, monkeypatch):
    from potluck_enterprise.licensing import services

    private, public = keys
    monkeypatch.setattr(format, "ISSUER_PUBLIC_KEY", public.read_bytes())
    text = issuer_tool("issue", "--licensee", "Acme", "--features", "sso", "--seats", "3",
                       "--days", "30", "--key", str(private)).stdout
    assert services.install(text).features == ["sso"]


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--features", "sso,teleport"], None,
     "error: unknown feature 'teleport'; choose from sso, billing, credits, compliance\n"),
    ([], {PRIVATE_KEY_ENV: ""},
     f"error: give the private key with --key FILE or in ${PRIVATE_KEY_ENV}\n"),
    ([], {PRIVATE_KEY_ENV: "not a key"},
     "error: not an unencrypted PEM private key: "),
    (["--key", "/nonexistent/issuer.pem"], None,
     "error: cannot read /nonexistent/issuer.pem: No such file or directory\n"),
])
def test_issue_refuses_bad_input_in_one_line(args, env, message):
    result = issuer_tool("issue", "--licensee", "Acme", "--seats", "3", "--days", "30", *args,
                         env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_the_shipped_public_key_is_the_vendored_one_byte_for_byte():
    if not VENDORED_KEY.parent.parent.is_dir():
        pytest.skip(f"no shared checkout beside the repository ({VENDORED_KEY.parent.parent})")
    assert format.PUBLIC_KEY_FILE.read_bytes() == VENDORED_KEY.read_bytes()


def test_production_trusts_only_the_shipped_key(issuer, monkeypatch):
    # Undo the fixture's swap: what production reads is the file beside the module.
    monkeypatch.setattr(format, "ISSUER_PUBLIC_KEY", format.PUBLIC_KEY_FILE.read_bytes())
    assert format.issuer_public_key().public_bytes_raw() == format.load_public_key(
        format.PUBLIC_KEY_FILE.read_bytes()).public_bytes_raw()
    with pytest.raises(LicenceError) as caught:
        format.verify(issuer.licence(), now=issuer.epoch + timedelta(days=1))
    assert caught.value.reason is Reason.BAD_SIGNATURE


def test_no_setting_or_environment_variable_can_replace_the_key():
    from django.conf import settings

    # The only licence settings say where the store is and whether to fetch renewals
    # from it; none names a key.
    assert [name for name in dir(settings) if "LICEN" in name.upper()] == [
        "LICENSE_ONLINE_RENEWAL", "LICENSE_STORE_URL"]
    verifier = Path(format.__file__).read_text()
    assert "environ" not in verifier and "django" not in verifier
