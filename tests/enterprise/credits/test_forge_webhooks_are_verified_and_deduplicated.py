# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Forge webhooks: a forged signature, an unknown repository and a wrong GitLab token
are refused with no write at all; a replayed delivery is acknowledged and credits
nothing more; the view only stores and queues (the rules run in the Celery task); a
GitHub merge and a GitLab merge each make exactly one grant."""

from __future__ import annotations

import uuid

import pytest
from credits_helpers import (
    deliver,
    gh_event,
    gh_headers,
    gh_pull,
    gh_user,
    gl_event,
    gl_headers,
)

from potluck_enterprise.credits import webhooks
from potluck_enterprise.credits.models import (
    Grant,
    GrantStatus,
    LedgerTransaction,
    WebhookDelivery,
)

REPO = "potluck/potluck"
ALICE, MAINT = gh_user("alice", 101), gh_user("maint", 900)


@pytest.fixture
def queued(monkeypatch):
    """Deliveries the view queued for Celery (run by the test as the worker would)."""
    from potluck_enterprise.credits import tasks

    seen: list[int] = []
    monkeypatch.setattr(tasks.process_delivery, "delay", lambda pk: seen.append(pk))
    return seen


def nothing_written() -> bool:
    return not (WebhookDelivery.objects.exists() or Grant.objects.exists()
                or LedgerTransaction.objects.exists())


def test_forged_signature_and_unknown_repository_are_refused_without_side_effects(
        transactional_db, credits_on, repo, client, queued, forge, caplog):
    credits_on()
    repository, secret = repo(first_grant_needs_approval=False)
    forge.pull(REPO, gh_pull(1, ALICE, MAINT), approved_by=["maint"])
    body = gh_event(REPO, gh_pull(1, ALICE, MAINT))

    forged = deliver(client, repository, body, gh_headers("not-the-secret", body))
    assert forged.status_code == 401 and forged.json() == {"detail": "bad signature"}
    tampered = gh_headers(secret, body)
    tampered_body = body.replace(b'"alice"', b'"mallory"')
    assert deliver(client, repository, tampered_body, tampered).status_code == 401
    missing = {k: v for k, v in gh_headers(secret, body).items()
               if k != "HTTP_X_HUB_SIGNATURE_256"}
    assert deliver(client, repository, body, missing).status_code == 401
    unknown = client.post(f"/api/credits/webhooks/github/{uuid.uuid4()}", body,
                          content_type="application/json", **gh_headers(secret, body))
    assert unknown.status_code == 404
    assert client.post("/api/credits/webhooks/github/not-a-uuid", body,
                       content_type="application/json",
                       **gh_headers(secret, body)).status_code == 404
    assert nothing_written() and queued == [] and forge.calls == []
    assert "bad signature" in caplog.text and "unknown repository" in caplog.text
    assert secret not in caplog.text


def test_a_replayed_delivery_credits_once(transactional_db, credits_on, repo, client, queued,
                                          forge):
    from potluck_enterprise.credits import tasks

    credits_on()
    repository, secret = repo(first_grant_needs_approval=False)
    pull = gh_pull(2, ALICE, MAINT, labels=("security",))
    forge.pull(REPO, pull, approved_by=["maint"])
    body = gh_event(REPO, pull)
    headers = gh_headers(secret, body)
    first = deliver(client, repository, body, headers)
    assert first.status_code == 202 and first.json()["queued"] is True
    # The view stored and queued; nothing was asked of the forge and nothing granted yet.
    assert forge.calls == [] and not Grant.objects.exists() and len(queued) == 1
    replay = deliver(client, repository, body, headers)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert len(queued) == 1 and WebhookDelivery.objects.count() == 1
    tasks.process_delivery.run(queued[0])  # the worker
    tasks.process_delivery.run(queued[0])  # at least once: a second run changes nothing
    grant = Grant.objects.get()
    assert (grant.status, grant.amount) == (GrantStatus.GRANTED, 3000)  # base x security
    assert LedgerTransaction.objects.filter(kind="grant").count() == 1
    # A redelivery under a new id (or the reconcile) finds the patch's grant.
    again = deliver(client, repository, body, gh_headers(secret, body))
    assert again.status_code == 202
    tasks.process_delivery.run(queued[-1])
    assert Grant.objects.count() == 1 and LedgerTransaction.objects.count() == 1


def test_events_that_are_not_merges_are_stored_only(transactional_db, credits_on, repo,
                                                    client, queued):
    credits_on()
    repository, secret = repo()
    closed = gh_event(REPO, gh_pull(3, ALICE, None, merged=False))
    assert deliver(client, repository, closed, gh_headers(secret, closed)).status_code == 200
    ping = b'{"zen": "Keep it logically awesome.", "repository": {"full_name": "potluck/potluck"}}'
    assert deliver(client, repository, ping, gh_headers(secret, ping, event="ping")
                   ).status_code == 200
    assert queued == [] and not Grant.objects.exists()
    other = gh_event("someone/else", gh_pull(4, ALICE, MAINT))
    assert deliver(client, repository, other, gh_headers(secret, other)).status_code == 400


def test_gitlab_merges_are_verified_by_token_in_constant_time_and_deduplicated(
        transactional_db, credits_on, repo, client, queued, forge):
    from potluck_enterprise.credits import tasks

    credits_on()
    repository, secret = repo("group/project", forge_name="gitlab", project_id="7",
                              first_grant_needs_approval=False)
    forge.approvals[("7", 5)] = ["maint"]
    author, merger = {"id": 201, "username": "bob", "name": "Bob"}, \
        {"id": 900, "username": "maint"}
    body = gl_event("group/project", 5, author, merger, labels=("docs",))
    assert deliver(client, repository, body, gl_headers("wrong")).status_code == 401
    assert deliver(client, repository, body, {"HTTP_X_GITLAB_EVENT_UUID": "x"}
                   ).status_code == 401
    assert not WebhookDelivery.objects.exists()
    headers = gl_headers(secret)
    assert deliver(client, repository, body, headers).status_code == 202
    assert deliver(client, repository, body, headers).json()["duplicate"] is True
    assert len(queued) == 1
    assert webhooks.process(queued[0]).endswith("granted")
    tasks.process_delivery.run(queued[0])
    grant = Grant.objects.get()
    assert (grant.number, grant.amount, grant.forge_account.login) == (5, 500, "bob")
