# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Helpers of the credits tests: forge payloads as the forges send them, signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any


def gh_user(login: str, uid: int, *, bot: bool = False) -> dict[str, Any]:
    return {"login": login, "id": uid, "type": "Bot" if bot else "User"}


def gh_pull(number: int, author: dict[str, Any], merged_by: dict[str, Any] | None, *,
            labels: tuple[str, ...] = (), body: str = "", merged: bool = True,
            merged_at: str = "2026-11-03T10:00:00Z", title: str = "") -> dict[str, Any]:
    return {"number": number, "title": title or f"Patch {number}", "body": body,
            "user": author, "merged": merged, "merged_by": merged_by,
            "merged_at": merged_at if merged else None, "updated_at": merged_at,
            "state": "closed", "labels": [{"name": name} for name in labels],
            "html_url": f"https://github.test/potluck/potluck/pull/{number}"}


def gh_event(repo: str, pull: dict[str, Any], action: str = "closed") -> bytes:
    return json.dumps({"action": action, "number": pull["number"], "pull_request": pull,
                       "repository": {"full_name": repo, "id": 99},
                       "sender": pull.get("merged_by") or pull["user"]}).encode()


def gh_headers(secret: str, body: bytes, *, delivery: str | None = None,
               event: str = "pull_request") -> dict[str, str]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"HTTP_X_HUB_SIGNATURE_256": signature, "HTTP_X_GITHUB_EVENT": event,
            "HTTP_X_GITHUB_DELIVERY": delivery or str(uuid.uuid4())}


def gl_event(project: str, iid: int, author: dict[str, Any], merger: dict[str, Any], *,
             labels: tuple[str, ...] = (), description: str = "") -> bytes:
    return json.dumps({
        "object_kind": "merge_request", "event_type": "merge_request",
        "user": {"id": merger["id"], "username": merger["username"]},
        "project": {"id": 7, "path_with_namespace": project},
        "object_attributes": {"iid": iid, "title": f"MR {iid}", "action": "merge",
                              "state": "merged", "author_id": author["id"],
                              "merge_user_id": merger["id"], "description": description,
                              "merged_at": "2026-11-03 10:00:00 UTC",
                              "url": f"https://gitlab.test/{project}/-/merge_requests/{iid}"},
        "labels": [{"title": name} for name in labels],
        "users": [author]}).encode()


def gl_headers(token: str, *, delivery: str | None = None) -> dict[str, str]:
    return {"HTTP_X_GITLAB_TOKEN": token, "HTTP_X_GITLAB_EVENT": "Merge Request Hook",
            "HTTP_X_GITLAB_EVENT_UUID": delivery or str(uuid.uuid4())}


def deliver(client: Any, repository: Any, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(f"/api/credits/webhooks/{repository.forge}/{repository.id}", body,
                       content_type="application/json", **headers)
