# SPDX-License-Identifier: Apache-2.0
"""Liveness (the web process answers) and readiness (it can do its job)."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

from potluck.nodes.services import live_node_names
from potluck.redis_client import get_redis


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database unreachable: {exc.__class__.__name__}"
    return None


def _check_redis() -> str | None:
    try:
        get_redis().ping()
    except Exception as exc:
        return f"redis unreachable: {exc.__class__.__name__}"
    return None


def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    problems: list[str] = []
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        problem = check()
        checks[name] = "ok" if problem is None else "failing"
        if problem:
            problems.append(problem)
    nodes: list[str] = []
    if checks["redis"] == "ok":
        nodes = live_node_names()
    checks["node_agents"] = "ok" if nodes else "failing"
    if not nodes:
        problems.append("no node agent has sent a heartbeat recently")
    ready = not problems
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks,
                         "nodes": nodes, "problems": problems}, status=200 if ready else 503)
