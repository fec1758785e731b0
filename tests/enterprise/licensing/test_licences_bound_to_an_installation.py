# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Installation binding: each installation has a stable id of its own; a licence bound to
it (format version 2) works there and is refused elsewhere with the reason in words (API
and console, CLI, the gate); unbound licences (version 1, byte for byte as before) still
work anywhere, e.g. on air-gapped sites."""

from __future__ import annotations

import base64
import json

import pytest
from rest_framework.test import APIClient

from potluck import extensions
from potluck.accounts.models import User
from potluck_enterprise.licensing import format, installation, services
from potluck_enterprise.licensing.models import Installation, InstalledLicence


@pytest.fixture
def operator(org) -> APIClient:
    user = User.objects.create_superuser("root", "root@acme.test", "a-long-password-1")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _payload(text: str) -> dict:
    body = "".join(text.strip().splitlines()[1:-1])
    return json.loads(base64.b64decode(body))["payload"]


def test_an_installation_has_one_stable_id(db):
    first = installation.current_id()
    assert first.startswith("inst_") and len(first) == 31
    assert format.INSTALLATION_ID_RE.match(first)
    assert installation.current_id() == first
    assert Installation.objects.count() == 1
    assert installation.generate() != installation.generate()


def test_a_bound_licence_works_only_on_its_installation(issuer, clock, operator, org,
                                                         user_client):
    ours = installation.current_id()
    bound = issuer.licence(version=2, installation_id=ours, features=["sso"])
    answer = operator.post("/api/license", {"license": bound}, format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["installation_id"] == ours and body["bound_to"] == ours
    assert extensions.feature_available("sso")

    elsewhere = issuer.licence(version=2, installation_id="inst_anotherinstallation00",
                               license_id="lic-other")
    refused = operator.post("/api/license", {"license": elsewhere}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"license": [
        f"this licence is bound to installation inst_anotherinstallation00, and this is "
        f"installation {ours}: get a licence issued for {ours} (the Enterprise page's store "
        "link carries it), or an unbound licence for an air-gapped site"]}
    assert InstalledLicence.objects.get(active=True).license_id == "lic-test-0001"

    # A database carried to another installation (its id changed under the licence): the
    # stored licence no longer verifies and its features switch off.
    Installation.objects.update(installation_id="inst_restoredelsewhere0000")
    status = services.status()
    assert status.state == "invalid"
    assert "bound to installation" in status.warnings[0]
    from potluck_enterprise.licensing.gating import gate

    assert gate.refresh() == frozenset()


def test_unbound_licences_are_version_1_as_before_and_work_anywhere(issuer, clock, operator):
    unbound = issuer.licence()
    payload = _payload(unbound)
    assert payload["version"] == 1 and "installation_id" not in payload
    licence = format.verify(unbound, now=clock.now, installation_id="inst_whatever00000000")
    assert licence.installation_id is None
    assert licence.to_payload() == payload
    assert operator.post("/api/license", {"license": unbound}, format="json").status_code == 201


def test_the_format_refuses_a_malformed_binding(issuer):
    for bad in ("", "x", "has spaces in it", 42):
        text = issuer.licence(version=2, installation_id=bad)
        with pytest.raises(format.LicenceError) as caught:
            format.verify(text, now=issuer.epoch)
        assert caught.value.reason is format.Reason.INVALID_FIELD
    # Version 1 with a binding, version 2 without: both refused.
    with pytest.raises(format.LicenceError, match="unexpected field 'installation_id'"):
        format.verify(issuer.licence(installation_id="inst_abcdefgh12345678"),
                      now=issuer.epoch)
    with pytest.raises(format.LicenceError, match="lacks the field 'installation_id'"):
        format.verify(issuer.licence(version=2), now=issuer.epoch)


def test_the_issuer_tool_binds_a_licence(issuer, tmp_path):
    from click.testing import CliRunner

    from potluck_enterprise.licensing.issuer_cli import cli

    key = tmp_path / "issuer.pem"
    key.write_bytes(issuer.private_pem)
    result = CliRunner().invoke(cli, ["issue", "--licensee", "Acme", "--seats", "5",
                                      "--days", "30", "--features", "sso", "--key", str(key),
                                      "--installation-id", "inst_boundbytheissuer0000"])
    assert result.exit_code == 0, result.output
    payload = _payload(result.stdout)
    assert payload["version"] == 2 and payload["installation_id"] == "inst_boundbytheissuer0000"
