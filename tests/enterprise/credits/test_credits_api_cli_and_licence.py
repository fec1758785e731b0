# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The interfaces: nothing answers without a licence that grants credits; switching the
feature adds and removes its hooks (policy, refresher, payer, revenue sink, panel);
repository secrets are shown once and encrypted at rest; maintainers see and decide the
approval queue, others do not; `potluck credits` grants, approves, checks the ledger and
distributes, with one-line errors."""

from __future__ import annotations

from click.testing import CliRunner
from credits_helpers import gh_pull, gh_user
from rest_framework.test import APIClient

from potluck import extensions
from potluck.accounts import services as accounts
from potluck.cli.main import cli
from potluck_enterprise.billing.payers import PAYERS
from potluck_enterprise.credits import forges, grants, identity
from potluck_enterprise.credits.models import GrantStatus, Repository
from potluck_enterprise.licensing.gating import gate


def potluck(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def person(email: str, superuser: bool = False):
    user = accounts.get_or_create_user(email)
    if superuser:
        user.is_superuser = True
        user.save(update_fields=["is_superuser"])
    client = APIClient()
    client.force_authenticate(user)
    return user, client


def test_unlicensed_nothing_answers_and_the_feature_switches_its_hooks(db, credits_on):
    _, client = person("op@example.test", superuser=True)
    assert client.get("/api/credits/status").status_code == 403
    result = potluck("credits", "ledger", "--check")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "credits" in result.output
    assert extensions.request_policies.get("credits") is None
    credits_on()
    assert extensions.request_policies.get("credits") is not None
    assert extensions.refreshers.get("credits") is not None and PAYERS.get("credits") is not None
    assert extensions.revenue_sinks.get("credits-revenue-share") is not None
    assert extensions.console_panels.get("credits") is not None
    assert client.get("/api/credits/status").status_code == 200
    gate.reset()
    assert extensions.request_policies.get("credits") is None and PAYERS.get("credits") is None
    assert extensions.console_panels.get("credits") is None


def test_repositories_approvals_and_the_cli(db, credits_on, forge):
    credits_on()
    _, operator = person("op@example.test", superuser=True)
    made = operator.post("/api/credits/repositories", {
        "forge": "github", "full_name": "potluck/potluck", "api_url": forge.url,
        "maintainers": ["maint"], "base_credits": 2000, "hold_days": 0}, format="json")
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert "secret" not in operator.get("/api/credits/repositories").json()[0]
    stored = Repository.objects.get()
    assert secret not in stored.secret_encrypted and len(secret) >= 32
    _, member = person("member@example.test")
    assert member.post("/api/credits/repositories", {"forge": "github",
                                                     "full_name": "x/y"},
                       format="json").status_code == 403

    # A first-timer's patch waits; only a maintainer sees and decides it.
    pull = gh_pull(3, gh_user("alice", 101), gh_user("maint", 900))
    forge.pull("potluck/potluck", pull, approved_by=["maint"])
    grant = grants.consider(stored, forges.github_patch(pull, "potluck/potluck", []),
                            source="webhook")
    assert grant.status == GrantStatus.AWAITING_APPROVAL
    assert member.get("/api/credits/approvals").json() == []
    assert member.post(f"/api/credits/approvals/{grant.pk}", {"decision": "approve"},
                       format="json").status_code == 404
    maint, maint_client = person("maint@example.test")
    identity.link(maint, "github", forges.Person("900", "maint"), how="operator")
    queue = maint_client.get("/api/credits/approvals").json()
    assert [g["number"] for g in queue] == [3]
    decided = maint_client.post(f"/api/credits/approvals/{grant.pk}", {"decision": "approve"},
                                format="json")
    assert decided.json()["status"] == GrantStatus.GRANTED

    # The CLI: a patch that came by mail, the ledger's check, a distribution.
    result = potluck("credits", "grant", "--repo", "potluck/potluck", "--number", "4",
                     "--author", "alice", "--author-id", "101", "--by", "maint")
    assert result.exit_code == 0 and "granted 2000 credits" in result.output
    result = potluck("credits", "grant", "--repo", "potluck/potluck", "--number", "5",
                     "--author", "maint", "--author-id", "900", "--by", "maint")
    assert result.exit_code == 1 and "own patch" in result.output
    result = potluck("credits", "ledger", "--check")
    assert result.exit_code == 0 and "sound" in result.output
    result = potluck("credits", "repos", "set", "potluck/potluck", "--cap", "9000",
                     "--weight", "perf=2", "--no-approval")
    assert result.exit_code == 0, result.output
    stored.refresh_from_db()
    assert (stored.monthly_cap, stored.label_weights, stored.require_approval,
            stored.base_credits) == (9000, {"perf": "2"}, False, 2000)
    assert potluck("credits", "repos", "set", "potluck/potluck", "--weight",
                   "perf=lots").exit_code == 1
    person("alice@example.test")
    assert potluck("credits", "link", "alice@example.test", "--forge", "github", "--login",
                   "alice", "--id", "101").exit_code == 0
    assert potluck("credits", "vest").exit_code == 0
    assert potluck("credits", "balance", "--user", "alice@example.test").output.strip() \
        == "4000"
    result = potluck("credits", "distribute", "--period", "2999-01-01")
    assert result.exit_code == 1 and "not over yet" in result.output
    board = operator.get("/api/credits/leaderboard").json()
    assert board[0]["accounts"] == ["github:alice"] and board[0]["credits"] == 4000
    assert operator.get("/api/credits/pool").json()["balance"] == 0
