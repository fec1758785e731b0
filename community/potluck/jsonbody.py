# SPDX-License-Identifier: Apache-2.0
"""Request bodies as JSON, with a nesting limit: a deep body is a 400, never a crash.

Python's own ``json`` parser recurses once per level, so 1,000 nested arrays raise a
``RecursionError`` (a 500, and a worker's stack spent); orjson stops at 1,024 levels. No
API of Potluck needs more than a few dozen (a JSON schema in ``response_format`` or a
tool's parameters are the deepest bodies OpenAI's API takes), so bodies deeper than
``max_depth`` are refused before anything reads them.

This module depends on nothing but orjson and the standard library, so every edge can
use it: the DRF parser (``potluck.json_parser``), the OpenAI-shaped Django views, and the
ASGI gateway. The API:

``loads(data, *, max_depth=DEFAULT_MAX_DEPTH) -> Any``
    ``data`` (bytes, bytearray, memoryview or str; UTF-8) parsed as RFC 8259 JSON
    (orjson: no ``NaN``/``Infinity``, no lone surrogates, integers beyond 64 bits
    become floats). Raises ``TooDeeplyNested`` when arrays and objects nest more than
    ``max_depth`` levels (a scalar is depth 0, ``[]`` depth 1, ``{"a": [1]}`` depth 2),
    or ``InvalidJSON`` (its ``str()`` says what is wrong) for anything that is not JSON.
``depth_exceeds(value, max_depth) -> bool``
    Whether an already-parsed value nests deeper than ``max_depth``, without recursion.
``InvalidJSON(ValueError)`` / ``TooDeeplyNested(InvalidJSON)``
    What ``loads`` raises; both carry ``max_depth`` (``None`` for plain bad JSON).
"""

from __future__ import annotations

from typing import Any

import orjson

# Levels of arrays/objects a request body may nest (OpenAI-shaped bodies use < 20).
DEFAULT_MAX_DEPTH = 64
__all__ = ["DEFAULT_MAX_DEPTH", "InvalidJSON", "TooDeeplyNested", "depth_exceeds", "loads"]


class InvalidJSON(ValueError):
    """The body is not JSON (or is too deep; see ``TooDeeplyNested``)."""

    max_depth: int | None = None


class TooDeeplyNested(InvalidJSON):
    """Arrays and objects nest deeper than the limit."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested more than {max_depth} levels deep")
        self.max_depth = max_depth


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """True when ``value``'s lists/dicts nest more than ``max_depth`` levels.

    Walks containers with an explicit stack (no recursion), stopping at the first
    container found past the limit.
    """
    if not isinstance(value, list | dict):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > max_depth:
            return True
        children = container.values() if isinstance(container, dict) else container
        for child in children:
            if isinstance(child, list | dict):
                stack.append((child, depth + 1))
    return False


def _brackets(data: bytes | str) -> int:
    """How many ``[`` and ``{`` the text holds: an upper bound of its depth."""
    return data.count(b"[" if isinstance(data, bytes) else "[") + data.count(
        b"{" if isinstance(data, bytes) else "{")


def loads(data: bytes | bytearray | memoryview | str, *,
          max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse ``data`` as JSON; refuse it past ``max_depth`` levels (see the module doc)."""
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # past orjson's own 1,024 levels
            raise TooDeeplyNested(max_depth) from None
        raise InvalidJSON(str(exc)) from None
    # The bracket count is a cheap upper bound: most bodies never need the walk.
    if _brackets(data) > max_depth and depth_exceeds(value, max_depth):
        raise TooDeeplyNested(max_depth)
    return value
