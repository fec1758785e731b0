# SPDX-License-Identifier: Apache-2.0
"""The URL configuration's routes that take an object id, enumerated (not listed by hand),
for the tenancy tests of each edition: a new route is covered the day it is added."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver

ROUTE_PARAM = re.compile(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>")
METHODS = ("get", "post", "patch", "put", "delete")


def id_routes(*, enterprise: bool) -> Iterator[tuple[str, URLPattern]]:
    """``(route, pattern)`` for each route under api/ and v1/ with an id in its path, as
    ``api/keys/{key_id}``; format-suffix twins left out. ``enterprise``: the enterprise
    edition's routes only (True), or the community edition's only (False)."""

    def walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern

    for raw, pattern in walk(get_resolver().url_patterns):
        if not raw.startswith(("api/", "v1/")) or "format" in raw:
            continue
        if pattern.callback.__module__.startswith("potluck_enterprise") != enterprise:
            continue
        route = ROUTE_PARAM.sub(lambda m: "{" + (m.group(1) or m.group(2)) + "}", raw)
        route = route.replace("^", "").replace("$", "").replace("/?", "/").rstrip("/")
        route = route.replace("//", "/")
        if "{" in route:
            yield route, pattern


def methods(pattern: URLPattern) -> list[str]:
    """The HTTP methods (lower case) the route's view answers."""
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions:
        return [m for m in METHODS if m in actions]
    view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    return [m for m in METHODS if view is not None and hasattr(view, m)]
