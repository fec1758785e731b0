# SPDX-License-Identifier: Apache-2.0
"""The one table of inference endpoints Potluck serves (online on /v1 and in batches).

Source: OpenAI's API reference (``POST /v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``); the Batch API accepts the same three URLs. ``name`` is what usage
records and policies call an endpoint, e.g. ``"chat.completions"``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One inference endpoint.

    ``path``: the URL path (``"/v1/chat/completions"``); ``name``: the usage record's
    endpoint name (``"chat.completions"``); ``streams``: whether it can answer as
    server-sent events (``"stream": true``); ``capability``: what a model must serve
    to be called here (``"chat"``, ``"completions"`` or ``"embeddings"``).
    """

    path: str
    name: str
    streams: bool
    capability: str


CHAT = Endpoint("/v1/chat/completions", "chat.completions", True, "chat")
COMPLETIONS = Endpoint("/v1/completions", "completions", True, "completions")
EMBEDDINGS = Endpoint("/v1/embeddings", "embeddings", False, "embeddings")

ALL: tuple[Endpoint, ...] = (CHAT, COMPLETIONS, EMBEDDINGS)
BY_PATH: dict[str, Endpoint] = {e.path: e for e in ALL}
BY_NAME: dict[str, Endpoint] = {e.name: e for e in ALL}
PATHS: tuple[str, ...] = tuple(BY_PATH)
NAMES: frozenset[str] = frozenset(BY_NAME)


def by_path(path: str) -> Endpoint | None:
    """The endpoint served at ``path``, or None."""
    return BY_PATH.get(path)
