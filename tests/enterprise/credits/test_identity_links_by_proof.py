# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Identity: a forge account links to a user only by a proof the user controls (signing
in to the forge with OAuth, against a local fake provider; or a one-time token in their
profile or a pull request they opened); grants to an unlinked account are held and vest
when it is linked; an account links to one user only."""

from __future__ import annotations

from credits_helpers import gh_pull, gh_user
from rest_framework.test import APIClient

from potluck.accounts import services as accounts
from potluck_enterprise.credits import forges, grants, identity, ledger
from potluck_enterprise.credits.models import ForgeAccount, GrantStatus, LinkToken

REPO = "potluck/potluck"


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_oauth_sign_in_links_and_releases_held_grants(db, credits_on, repo, forge, settings):
    credits_on()
    settings.CREDITS_GITHUB_OAUTH_URL = forge.url
    settings.CREDITS_GITHUB_API_URL = forge.url
    settings.CREDITS_GITHUB_CLIENT_ID, settings.CREDITS_GITHUB_CLIENT_SECRET = "cid", "cs"
    repository, _ = repo(first_grant_needs_approval=False, hold_days=0)
    forge.user("alice", 101)
    pull = gh_pull(1, gh_user("alice", 101), gh_user("maint", 900))
    forge.pull(REPO, pull, approved_by=["maint"])
    grant = grants.consider(repository, forges.github_patch(pull, REPO, []), source="webhook")
    assert grant.status == GrantStatus.GRANTED  # held: nobody is linked yet
    assert ledger.balance(ledger.pending_account(grant.forge_account)) == 1000

    user = accounts.get_or_create_user("alice@example.test")
    client = signed_in(user)
    start = client.get("/api/credits/link/github/start")
    assert start.status_code == 302
    forge.oauth_login = "alice"
    import requests

    back = requests.get(start["Location"], allow_redirects=False, timeout=5)
    callback = back.headers["location"].split("/api/credits/link/github/callback")[1]
    done = client.get("/api/credits/link/github/callback" + callback)
    assert done.status_code == 302 and done["Location"] == "/credits?linked=github:alice"
    account = ForgeAccount.objects.get(login="alice")
    assert account.user == user and account.linked_by == "oauth"
    wallet = ledger.contributor_wallet(user.pk)
    assert ledger.balance(wallet) == 1000  # vested on link (hold 0)
    grant.refresh_from_db()
    assert grant.status == GrantStatus.VESTED
    body = client.get("/api/credits/wallet").json()
    assert body["balance"] == 1000 and body["linked_accounts"][0]["login"] == "alice"
    assert body["organization"]["slug"] == wallet.organization.slug

    # Someone else cannot replay the state, nor take the account.
    mallory = accounts.get_or_create_user("mallory@example.test")
    stolen = signed_in(mallory).get("/api/credits/link/github/callback" + callback)
    assert stolen.status_code == 403
    forge.oauth_login = "alice"
    start = signed_in(mallory).get("/api/credits/link/github/start")
    back = requests.get(start["Location"], allow_redirects=False, timeout=5)
    query = back.headers["location"].split("/api/credits/link/github/callback")[1]
    refused = signed_in(mallory).get("/api/credits/link/github/callback" + query)
    assert refused.status_code == 409
    assert ForgeAccount.objects.get(login="alice").user == user


def test_a_one_time_token_in_the_profile_or_a_pull_request_links(db, credits_on, repo, forge,
                                                                   settings):
    credits_on()
    settings.CREDITS_GITHUB_API_URL = forge.url
    repository, _ = repo()
    bob = accounts.get_or_create_user("bob@example.test")
    client = signed_in(bob)
    made = client.post("/api/credits/link/token", {"forge": "github", "login": "bob"},
                       format="json")
    token = made.json()["token"]
    assert made.status_code == 201 and token.startswith("potluck-link-")
    assert LinkToken.objects.get().token_hash != token  # stored hashed
    forge.user("bob", 102, bio="I write Rust")
    missing = client.post("/api/credits/link/verify", {"forge": "github", "login": "bob"},
                          format="json")
    assert missing.status_code == 403
    forge.user("bob", 102, bio=f"I write Rust. {token}")
    linked = client.post("/api/credits/link/verify", {"forge": "github", "login": "bob"},
                         format="json")
    assert linked.status_code == 200 and ForgeAccount.objects.get(login="bob").user == bob
    # The token was one-time: another user copying it gets nothing.
    eve = accounts.get_or_create_user("eve@example.test")
    assert signed_in(eve).post("/api/credits/link/verify", {"forge": "github", "login": "bob"},
                               format="json").status_code == 403

    # A pull request proof: the token in the body of a PR the login opened.
    carol = accounts.get_or_create_user("carol@example.test")
    client = signed_in(carol)
    token = client.post("/api/credits/link/token", {"forge": "github", "login": "carol"},
                        format="json").json()["token"]
    forge.pull(REPO, gh_pull(40, gh_user("carol", 103), None, merged=False,
                             body=f"Linking my Potluck account: {token}"))
    forge.pull(REPO, gh_pull(41, gh_user("eve", 105), None, merged=False, body=token))
    wrong = client.post("/api/credits/link/verify", {"forge": "github", "login": "carol",
                                                     "repository": str(repository.id),
                                                     "number": 41}, format="json")
    assert wrong.status_code == 403  # not opened by carol
    ok = client.post("/api/credits/link/verify", {"forge": "github", "login": "carol",
                                                  "repository": str(repository.id),
                                                  "number": 40}, format="json")
    assert ok.status_code == 200 and ForgeAccount.objects.get(login="carol").user == carol


def test_bots_cannot_link_and_api_keys_cannot_act_as_a_person(db, credits_on, org, key_for):
    credits_on()
    user = accounts.get_or_create_user("dan@example.test")
    try:
        identity.link(user, "github", forges.Person("9", "ci[bot]", is_bot=True), how="token")
        raise AssertionError("a bot linked")
    except Exception as exc:
        assert "bot" in str(exc)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_for(org, scopes=['admin'])}")
    assert client.get("/api/credits/wallet").status_code == 403
    assert client.get("/api/credits/status").status_code == 200
