# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A local fake of the GitHub and GitLab endpoints credits uses (REST API and OAuth).

GitHub: ``GET /repos/{o}/{r}/pulls`` (closed, newest first), ``/pulls/{n}``,
``/pulls/{n}/reviews``, ``/users/{login}``, ``/user`` (with an OAuth token),
``/login/oauth/authorize`` (redirects back with a code for ``oauth_login``) and
``POST /login/oauth/access_token``. GitLab (under ``/gitlab``): ``/api/v4/projects/{id}/
merge_requests`` (merged), ``/merge_requests/{iid}``, ``/approvals``, ``/api/v4/users``,
``/api/v4/user``, ``/oauth/token``. State is plain dicts the test fills; ``calls``
lists every path asked for.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit


@dataclass
class FakeForge:
    pulls: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)  # repo -> n
    reviews: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # login -> user
    merge_requests: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    approvals: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # OAuth code -> login
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> login
    oauth_login: str = ""  # who "signs in" at the authorize page
    calls: list[str] = field(default_factory=list)
    down: bool = False
    url: str = ""

    def start(self) -> FakeForge:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- filling ---------------------------------------------------------------------------
    def user(self, login: str, uid: int, *, bio: str = "", bot: bool = False) -> dict[str, Any]:
        self.users[login] = {"login": login, "username": login, "id": uid, "bio": bio,
                             "type": "Bot" if bot else "User", "bot": bot, "name": login}
        return self.users[login]

    def pull(self, repo: str, pr: dict[str, Any], approved_by: list[str] = ()) -> None:
        self.pulls.setdefault(repo, {})[pr["number"]] = pr
        self.reviews[(repo, pr["number"])] = [
            {"user": {"login": login}, "state": "APPROVED"} for login in approved_by]

    # -- serving ----------------------------------------------------------------------------
    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any,
              headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(raw)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(raw)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = parts.path
        self.calls.append(f"{method} {path}")
        if self.down:
            self._send(handler, 503, {"message": "down"})
            return
        if path == "/login/oauth/authorize":
            code = secrets.token_hex(8)
            self.codes[code] = self.oauth_login
            target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
            self._send(handler, 302, {}, {"location": target})
            return
        if path in ("/login/oauth/access_token", "/gitlab/oauth/token") and method == "POST":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            login = self.codes.pop(form.get("code", ""), None)
            if login is None:
                self._send(handler, 200, {"error": "bad_verification_code"})
                return
            token = "gho_" + secrets.token_hex(8)
            self.tokens[token] = login
            self._send(handler, 200, {"access_token": token, "token_type": "bearer"})
            return
        status, body = self._route(path, query, handler.headers.get("authorization", ""))
        self._send(handler, status, body)

    def _route(self, path: str, query: dict[str, str], auth: str) -> tuple[int, Any]:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments[0] == "gitlab":
            return self._gitlab(segments[3:] if segments[1:3] == ["api", "v4"] else [],
                                query, auth)
        if segments == ["user"]:
            login = self.tokens.get(auth.removeprefix("Bearer ").strip())
            return (200, self.users[login]) if login else (401, {"message": "Bad creds"})
        if len(segments) == 2 and segments[0] == "users":
            user = self.users.get(segments[1])
            return (200, user) if user else (404, {"message": "Not Found"})
        if len(segments) >= 4 and segments[0] == "repos" and segments[3] == "pulls":
            repo = f"{segments[1]}/{segments[2]}"
            pulls = self.pulls.get(repo, {})
            if len(segments) == 4:
                page = int(query.get("page", 1))
                ordered = sorted(pulls.values(), key=lambda p: p.get("updated_at") or "",
                                 reverse=True)
                return 200, ordered[(page - 1) * 100:page * 100]
            number = int(segments[4])
            if number not in pulls:
                return 404, {"message": "Not Found"}
            if len(segments) == 5:
                return 200, pulls[number]
            if segments[5] == "reviews":
                return 200, self.reviews.get((repo, number), [])
        return 404, {"message": f"Not Found: {path}"}

    def _gitlab(self, segments: list[str], query: dict[str, str], auth: str
                ) -> tuple[int, Any]:
        if segments == ["user"]:
            login = self.tokens.get(auth.removeprefix("Bearer ").strip())
            return (200, self.users[login]) if login else (401, {"message": "401"})
        if segments == ["users"]:
            user = self.users.get(query.get("username", ""))
            return 200, [user] if user else []
        if len(segments) == 2 and segments[0] == "users":
            found = [u for u in self.users.values() if str(u["id"]) == segments[1]]
            return (200, found[0]) if found else (404, {"message": "404"})
        if len(segments) >= 3 and segments[0] == "projects" and segments[2] == "merge_requests":
            mrs = self.merge_requests.get(segments[1], {})
            if len(segments) == 3:
                return 200, list(mrs.values()) if int(query.get("page", 1)) == 1 else []
            iid = int(segments[3])
            if len(segments) == 5 and segments[4] == "approvals":
                return 200, {"approved_by": [{"user": {"username": u}} for u in
                                             self.approvals.get((segments[1], iid), [])]}
            if iid not in mrs:
                return 404, {"message": "404 Not found"}
            if len(segments) == 4:
                return 200, mrs[iid]
        return 404, {"message": "404 Not found"}
