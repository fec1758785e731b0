# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""`potluck license install FILE` and `potluck license show`, run in-process (CliRunner)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from potluck import extensions
from potluck.cli.main import cli
from potluck_enterprise.licensing.models import InstalledLicence

pytestmark = pytest.mark.django_db


def potluck(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def test_the_license_group_is_part_of_the_potluck_command():
    result = potluck("--help")
    assert result.exit_code == 0
    assert "license" in result.output


def test_show_without_a_licence(clock):
    from potluck_enterprise.licensing import installation

    result = potluck("license", "show")
    assert result.exit_code == 0
    assert result.stdout == ("no licence installed: this is the community edition\n"
                             f"installation: {installation.current_id()}\n")


def test_install_a_file_then_show_it(issuer, clock, tmp_path):
    path = tmp_path / "acme.license"
    path.write_text(issuer.licence(features=["sso"], seats=5, days=20))
    result = potluck("license", "install", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "installed licence lic-test-0001 for Acme Corp; running processes apply it within "
        "3 seconds")
    assert extensions.feature_available("sso")
    assert InstalledLicence.objects.get().installed_by is None

    shown = potluck("license", "show")
    assert shown.exit_code == 0
    from potluck_enterprise.licensing import installation

    assert shown.stdout.splitlines() == [
        f"installation: {installation.current_id()}",
        "licence:      lic-test-0001",
        "licensee:     Acme Corp",
        "organization: Acme",
        "state:        expiring",
        "features:     sso",
        "seats:        0 used of 5",
        "issued:       2026-01-01 00:00 UTC",
        "expires:      2026-01-21 00:00 UTC",
        "grace until:  2026-02-04 00:00 UTC",
        "bound to:     any installation",
        "installed:    2026-01-02 00:00 UTC",
    ]
    assert shown.stderr == "warning: the licence expires in 19 days, on 2026-01-21\n"


def test_show_json_is_the_api_shape(licensed, clock):
    licensed(features=["sso", "teleport"])
    body = json.loads(potluck("license", "show", "--json").stdout)
    assert body["license_id"] == "lic-test-0001"
    assert body["features"][1] == {"key": "teleport", "title": "teleport", "enabled": False}
    assert body["expires_at"] == "2027-01-01T00:00:00+00:00"


def test_install_reads_standard_input(issuer, clock):
    result = potluck("license", "install", "-", stdin=issuer.licence())
    assert result.exit_code == 0, result.output
    assert InstalledLicence.objects.get().license_id == "lic-test-0001"


def test_a_refused_licence_is_one_line_and_a_non_zero_exit(issuer, clock, tmp_path):
    envelope_text = issuer.licence()
    path = tmp_path / "tampered.license"
    lines = envelope_text.splitlines()
    path.write_text("\n".join([lines[0], lines[1][::-1], *lines[2:]]))
    result = potluck("license", "install", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: license: ")
    assert not InstalledLicence.objects.exists()


def test_a_wrong_key_is_named_as_such(issuer, clock, tmp_path):
    from potluck_enterprise.licensing import format

    other, _ = format.generate_key_pair()
    path = tmp_path / "other.license"
    path.write_text(format.sign(issuer.payload(), format.load_private_key(other)))
    result = potluck("license", "install", str(path))
    assert result.exit_code == 1
    assert result.stderr == ("error: license: the signature does not match the issuer's key: "
                             "the licence was altered, or not issued for Potluck\n")


def test_an_unreadable_file_is_one_line(clock, tmp_path):
    result = potluck("license", "install", str(tmp_path / "missing.license"))
    assert result.exit_code == 1
    assert result.stderr == (f"error: cannot read {tmp_path / 'missing.license'}: "
                             "No such file or directory\n")
