# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""GitHub and GitLab: verifying deliveries, reading merged patches, and their REST APIs.

Facts relied on (GitHub "Webhook events and payloads", "Validating webhook deliveries";
GitLab "Webhook events", "Merge requests API", "Merge request approvals API"):

- GitHub signs the raw body: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret,
  body)>``; ``X-GitHub-Delivery`` is a GUID per delivery (kept on manual redelivery);
  ``X-GitHub-Event: pull_request``; a merge is ``action == "closed"`` with
  ``pull_request.merged``; ``user.type == "Bot"`` marks bots (logins end ``[bot]``).
  Reviews come from ``GET /repos/{repo}/pulls/{n}/reviews`` (state ``APPROVED``).
- GitLab sends the secret in plain text in ``X-Gitlab-Token`` (compared in constant
  time), ``X-Gitlab-Event-UUID`` per delivery (``X-Gitlab-Webhook-UUID`` names the hook),
  ``object_kind == "merge_request"`` with ``object_attributes.action == "merge"``;
  approvals from ``GET /projects/{id}/merge_requests/{iid}/approvals``; bots are users
  whose ``bot`` flag is set (or service accounts named ``*-bot``/``project_*_bot``).
- A revert made with GitHub's button has the body ``Reverts owner/repo#12``; GitLab's
  revert writes ``This reverts merge request !12`` (or ``This reverts commit``).

The API clients use ``requests`` with a timeout; their base URL is the repository's
``api_url`` or the forge's default (``POTLUCK_CREDITS_GITHUB_API_URL``,
``POTLUCK_CREDITS_GITLAB_URL`` + ``/api/v4``), so tests point them at a local fake.
Errors: ``ForgeUnavailable`` (retry later) and ``ForgeRejected`` (4xx that will not change).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.conf import settings

from potluck_enterprise import crypto
from potluck_enterprise.credits.models import Forge, Repository

_GH_REVERT = re.compile(r"\bReverts\s+([\w.-]+/[\w.-]+)#(\d+)")
_GL_REVERT = re.compile(r"This reverts merge request\s+!(\d+)")


class ForgeUnavailable(Exception):
    """The forge did not answer, or answered 429/5xx: try again later."""


class ForgeRejected(Exception):
    """The forge refused the call (4xx other than 429)."""


@dataclass(frozen=True)
class Person:
    external_id: str
    login: str
    is_bot: bool = False


@dataclass(frozen=True)
class MergedPatch:
    """A merged pull or merge request, whichever forge and path it came by."""

    forge: str
    repository: str  # full name
    number: int
    title: str
    author: Person
    merged_by: Person | None
    merged_at: datetime
    labels: tuple[str, ...] = ()
    url: str = ""
    reverts: int | None = None  # the number of the patch this one reverts
    approvers: tuple[str, ...] | None = None  # logins, when the payload says (GitLab)
    extra: dict[str, Any] = field(default_factory=dict)


# -- verification ---------------------------------------------------------------------
def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the HMAC-SHA256 of the raw ``body`` (constant time)."""
    return bool(header) and hmac.compare_digest(github_signature(secret, body),
                                                str(header))


def verify_gitlab(secret: str, header: str | None) -> bool:
    """Whether ``X-Gitlab-Token`` equals the secret (constant time)."""
    return bool(header) and hmac.compare_digest(secret.encode(), str(header).encode())


# -- payloads --------------------------------------------------------------------------
def _when(value: Any) -> datetime:
    if not value:
        return datetime.now(UTC)
    text = str(value).replace("Z", "+00:00").replace(" UTC", "+00:00")
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _gh_person(user: dict[str, Any] | None, bots: list[str]) -> Person | None:
    if not user:
        return None
    login = str(user.get("login") or "")
    return Person(str(user.get("id") or ""), login,
                  user.get("type") == "Bot" or login.endswith("[bot]") or login in bots)


def github_patch(pr: dict[str, Any], repo: str, bots: list[str]) -> MergedPatch | None:
    """A merged pull request from a ``pull_request`` object (webhook or API); None if it
    is not merged."""
    if not (pr.get("merged") or pr.get("merged_at")):
        return None
    author = _gh_person(pr.get("user"), bots)
    if author is None:
        return None
    body = str(pr.get("body") or "")
    reverts = None
    for found in _GH_REVERT.finditer(body):
        if found.group(1).lower() == repo.lower():
            reverts = int(found.group(2))
    return MergedPatch(
        forge=Forge.GITHUB, repository=repo, number=int(pr["number"]),
        title=str(pr.get("title") or "")[:300], author=author,
        merged_by=_gh_person(pr.get("merged_by"), bots), merged_at=_when(pr.get("merged_at")),
        labels=tuple(str(label.get("name")) for label in pr.get("labels") or []
                     if isinstance(label, dict)),
        url=str(pr.get("html_url") or "")[:500], reverts=reverts)


def _gl_person(user: dict[str, Any] | None, bots: list[str]) -> Person | None:
    if not user:
        return None
    login = str(user.get("username") or "")
    return Person(str(user.get("id") or ""), login,
                  bool(user.get("bot")) or login.endswith("-bot") or
                  bool(re.fullmatch(r"(project|group)_\d+_bot\w*", login)) or login in bots)


def gitlab_patch(payload: dict[str, Any], repo: str, bots: list[str]) -> MergedPatch | None:
    """A merged merge request from a merge-request hook; None if it is not a merge."""
    attrs = payload.get("object_attributes") or {}
    if payload.get("object_kind") != "merge_request" or attrs.get("action") != "merge":
        return None
    author = _gl_person(_gitlab_author(payload), bots)
    if author is None:
        return None
    merged_by = None
    if attrs.get("merge_user_id") is not None or payload.get("user"):
        user = payload.get("user") or {}
        merged_by = _gl_person({"id": attrs.get("merge_user_id") or user.get("id"),
                                "username": user.get("username")}, bots)
    found = _GL_REVERT.search(str(attrs.get("description") or ""))
    return MergedPatch(
        forge=Forge.GITLAB, repository=repo, number=int(attrs["iid"]),
        title=str(attrs.get("title") or "")[:300], author=author, merged_by=merged_by,
        merged_at=_when(attrs.get("merged_at") or attrs.get("updated_at")),
        labels=tuple(str(label.get("title")) for label in payload.get("labels") or []
                     if isinstance(label, dict)),
        url=str(attrs.get("url") or "")[:500],
        reverts=int(found.group(1)) if found else None)


def _gitlab_author(payload: dict[str, Any]) -> dict[str, Any] | None:
    attrs = payload.get("object_attributes") or {}
    for user in payload.get("users") or []:  # some GitLab versions list them
        if str(user.get("id")) == str(attrs.get("author_id")):
            return user
    author = attrs.get("author") or payload.get("author")
    if isinstance(author, dict):
        return author
    if attrs.get("author_id") is not None:
        return {"id": attrs["author_id"], "username": attrs.get("author_username") or ""}
    return None


# -- the APIs --------------------------------------------------------------------------
def api_base(repository: Repository) -> str:
    if repository.api_url:
        return repository.api_url.rstrip("/")
    if repository.forge == Forge.GITHUB:
        return settings.CREDITS_GITHUB_API_URL.rstrip("/")
    return settings.CREDITS_GITLAB_URL.rstrip("/") + "/api/v4"


def _headers(repository: Repository) -> dict[str, str]:
    token = crypto.decrypt(repository.api_token_encrypted) if \
        repository.api_token_encrypted else ""
    if repository.forge == Forge.GITHUB:
        headers = {"Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers
    return {"PRIVATE-TOKEN": token} if token else {}


def get_json(url: str, *, headers: dict[str, str] | None = None,
             params: dict[str, Any] | None = None) -> Any:
    """GET ``url`` as JSON; raises ``ForgeUnavailable`` or ``ForgeRejected``."""
    try:
        response = requests.get(url, headers=headers or {}, params=params,
                                timeout=settings.CREDITS_FORGE_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise ForgeUnavailable(f"{url}: {exc.__class__.__name__}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise ForgeUnavailable(f"{url}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise ForgeRejected(f"{url}: HTTP {response.status_code}")
    return response.json()


def approvers(repository: Repository, number: int) -> list[str]:
    """Logins of the people who approved patch ``number`` (reviews or approvals)."""
    base = api_base(repository)
    if repository.forge == Forge.GITHUB:
        reviews = get_json(f"{base}/repos/{repository.full_name}/pulls/{number}/reviews",
                           headers=_headers(repository), params={"per_page": 100})
        return [str((r.get("user") or {}).get("login") or "") for r in reviews
                if r.get("state") == "APPROVED"]
    project = repository.project_id or requests.utils.quote(repository.full_name, safe="")
    data = get_json(f"{base}/projects/{project}/merge_requests/{number}/approvals",
                    headers=_headers(repository))
    return [str((a.get("user") or {}).get("username") or "")
            for a in data.get("approved_by") or []]


def recently_merged(repository: Repository, days: int) -> list[MergedPatch]:
    """Patches merged in the last ``days`` days, through the forge's API (the reconcile)."""
    base = api_base(repository)
    since = datetime.now(UTC) - timedelta(days=days)
    found: list[MergedPatch] = []
    if repository.forge == Forge.GITHUB:
        for page in range(1, 11):
            pulls = get_json(f"{base}/repos/{repository.full_name}/pulls",
                             headers=_headers(repository),
                             params={"state": "closed", "sort": "updated",
                                     "direction": "desc", "per_page": 100, "page": page})
            for pr in pulls:
                if pr.get("merged_at") and _when(pr["merged_at"]) >= since:
                    # The list omits merged_by: the pull itself has it.
                    full = get_json(f"{base}/repos/{repository.full_name}/pulls/"
                                    f"{pr['number']}", headers=_headers(repository))
                    patch = github_patch(full, repository.full_name, repository.bots)
                    if patch is not None:
                        found.append(patch)
            if len(pulls) < 100 or (pulls and _when(pulls[-1].get("updated_at")) < since):
                break
        return found
    project = repository.project_id or requests.utils.quote(repository.full_name, safe="")
    for page in range(1, 11):
        mrs = get_json(f"{base}/projects/{project}/merge_requests",
                       headers=_headers(repository),
                       params={"state": "merged", "updated_after": since.isoformat(),
                               "per_page": 100, "page": page})
        for mr in mrs:
            payload = {"object_kind": "merge_request",
                       "object_attributes": {**mr, "action": "merge",
                                             "author_id": (mr.get("author") or {}).get("id"),
                                             "merge_user_id": (mr.get("merge_user") or
                                                               mr.get("merged_by") or {}
                                                               ).get("id")},
                       "user": mr.get("merge_user") or mr.get("merged_by"),
                       "labels": [{"title": label} for label in mr.get("labels") or []]}
            payload["object_attributes"]["author"] = mr.get("author")
            patch = gitlab_patch(payload, repository.full_name, repository.bots)
            if patch is not None:
                found.append(patch)
        if len(mrs) < 100:
            break
    return found


def profile_text(forge: str, login: str, api_url: str | None = None) -> tuple[Person, str]:
    """(the account, the text of its public profile: bio, name, blog) for a login."""
    if forge == Forge.GITHUB:
        base = (api_url or settings.CREDITS_GITHUB_API_URL).rstrip("/")
        user = get_json(f"{base}/users/{requests.utils.quote(login, safe='')}",
                        headers={"Accept": "application/vnd.github+json"})
        text = " ".join(str(user.get(k) or "") for k in ("bio", "name", "blog"))
        return Person(str(user["id"]), str(user["login"]), user.get("type") == "Bot"), text
    base = (api_url or settings.CREDITS_GITLAB_URL.rstrip("/") + "/api/v4").rstrip("/")
    users = get_json(f"{base}/users", params={"username": login})
    if not users:
        raise ForgeRejected(f"no GitLab user {login!r}")
    user = get_json(f"{base}/users/{users[0]['id']}")
    text = " ".join(str(user.get(k) or "") for k in ("bio", "name", "website_url"))
    return Person(str(user["id"]), str(user["username"]), bool(user.get("bot"))), text
