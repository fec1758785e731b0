# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""`potluck sso ...`: the operator's commands, run in-process (CliRunner)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from potluck.cli.main import cli
from potluck_enterprise.sso import domains

pytestmark = pytest.mark.django_db


def potluck(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_an_operator_verifies_a_claimed_domain(org):
    claimed = domains.add_domain(org, "corp.test")

    listed = potluck("sso", "domains", "--org", "acme")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines() == [
        "corp.test: unverified",
        f'  TXT _potluck-verification.corp.test "potluck-verification='
        f'{claimed.verification_token}"']

    result = potluck("sso", "verify-domain", "CORP.test", "--org", "acme")
    assert result.exit_code == 0, result.output
    assert result.stdout == "corp.test is verified for acme\n"
    claimed.refresh_from_db()
    assert claimed.verification_method == "operator"


def test_a_domain_must_be_claimed_before_an_operator_verifies_it(org):
    result = potluck("sso", "verify-domain", "corp.test", "--org", "acme")

    assert result.exit_code == 1
    assert result.stderr == "error: acme has not claimed corp.test; an admin adds it first\n"
