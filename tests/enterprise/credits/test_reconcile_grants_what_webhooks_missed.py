# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""GitHub does not retry failed deliveries: the reconcile lists recently merged pull
requests through the forge's API (a local fake at a configured base URL) and grants
what no delivery brought, exactly once however often it runs and whichever way a patch
came first. GitLab's merged merge requests likewise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from credits_helpers import deliver, gh_event, gh_headers, gh_pull, gh_user

from potluck_enterprise.credits import tasks, webhooks
from potluck_enterprise.credits.models import Grant, GrantStatus, LedgerTransaction

REPO = "potluck/potluck"
MAINT = gh_user("maint", 900)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_reconcile_grants_each_missed_patch_once(transactional_db, credits_on, repo, forge,
                                                 client, monkeypatch):
    credits_on()
    repository, secret = repo(first_grant_needs_approval=False)
    now = datetime.now(UTC)
    authors = [gh_user(f"dev{i}", 300 + i) for i in range(4)]
    pulls = [gh_pull(100 + i, authors[i], MAINT, merged_at=iso(now - timedelta(hours=i + 1)))
             for i in range(4)]
    pulls.append(gh_pull(99, authors[0], MAINT, merged_at=iso(now - timedelta(days=9))))
    pulls.append(gh_pull(98, authors[1], None, merged=False))
    for pull in pulls:
        forge.pull(REPO, pull, approved_by=["maint"])
    # One delivery got through (and was processed by the worker).
    queued: list[int] = []
    monkeypatch.setattr(tasks.process_delivery, "delay", lambda pk: queued.append(pk))
    body = gh_event(REPO, pulls[0])
    assert deliver(client, repository, body, gh_headers(secret, body)).status_code == 202
    webhooks.process(queued[0])

    made = webhooks.reconcile(repository, days=3)
    assert len(made) == 3
    assert sorted(Grant.objects.values_list("number", flat=True)) == [100, 101, 102, 103]
    assert set(Grant.objects.values_list("status", flat=True)) == {GrantStatus.GRANTED}
    assert set(Grant.objects.values_list("source", flat=True)) == {"webhook", "reconcile"}
    assert webhooks.reconcile(repository, days=3) == []  # again: nothing more
    tasks.reconcile.run()  # beat's task, the same once-only
    assert LedgerTransaction.objects.filter(kind="grant").count() == 4
    # A late delivery of a reconciled patch credits nothing more.
    late = gh_event(REPO, pulls[2])
    deliver(client, repository, late, gh_headers(secret, late))
    webhooks.process(queued[-1])
    assert LedgerTransaction.objects.filter(kind="grant").count() == 4


def test_reconcile_reads_gitlab_merge_requests(db, credits_on, repo, forge):
    credits_on()
    repository, _ = repo("group/project", forge_name="gitlab", project_id="7",
                         first_grant_needs_approval=False)
    now = datetime.now(UTC)
    forge.merge_requests["7"] = {
        3: {"iid": 3, "title": "Fix", "state": "merged", "description": "",
            "author": {"id": 401, "username": "erin"},
            "merge_user": {"id": 900, "username": "maint"},
            "merged_at": iso(now - timedelta(hours=2)), "labels": ["security"],
            "web_url": "https://gitlab.test/group/project/-/merge_requests/3"}}
    forge.approvals[("7", 3)] = ["maint"]
    assert len(webhooks.reconcile(repository, days=3)) == 1
    grant = Grant.objects.get()
    assert (grant.forge_account.login, grant.amount) == ("erin", 3000)
    assert webhooks.reconcile(repository, days=3) == []
