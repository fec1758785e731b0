# SPDX-License-Identifier: Apache-2.0
"""What every stage of the inference core sees of one request: its ``RequestContext``.

One context per request, online (``/v1``) or a batch line, created before anything is
checked (so a request refused by authentication still has one) and finished exactly
once. Policies read it, may rewrite ``body``, add ``response_headers`` and keep their
own notes in ``state`` under their name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from potluck.inference.catalog import ModelEntry
    from potluck.protocol.endpoints import Endpoint

ONLINE = "online"
BATCH = "batch"


class Outcome:
    """How a request ended, as ``RequestContext.outcome`` names it."""

    SERVED = "served"  # an answer from a replica reached the client (any status it gave)
    REFUSED = "refused"  # refused before a replica saw it: auth, limits, a policy, bad input
    FAILED = "failed"  # a replica failed it, or Potluck did
    CLIENT_GONE = "client_gone"  # the client went away before the end
    DEFERRED = "deferred"  # a batch line put back for a later run: not a finished request


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes the request: an API key of an organization (or a signed-in person).

    Limits are requests and tokens per minute; None means the installation's default.
    """

    organization_id: str
    api_key_id: str | None
    scopes: frozenset[str] = frozenset()
    user_id: str | None = None
    expires_at: datetime | None = None
    key_rpm: int | None = None
    key_tpm: int | None = None
    org_rpm: int | None = None
    org_tpm: int | None = None


@dataclass(slots=True, eq=False)
class RequestContext:
    """One inference request on its way through the core.

    Token counts are what the replica reported (prompt and completion tokens). Times:
    ``started`` is ``time.perf_counter()`` when the request arrived, ``created_at``
    epoch seconds. ``status`` is the HTTP status the client got (499: it went away;
    0: not decided yet).
    """

    request_id: str
    source: str  # ONLINE or BATCH
    endpoint: Endpoint | None
    started: float = field(default_factory=time.perf_counter)
    created_at: float = field(default_factory=time.time)
    caller: Caller | None = None
    model: str = ""  # the name the client asked for
    entry: ModelEntry | None = None  # what it resolved to
    body: dict[str, Any] | None = None  # the request body; on_request policies may rewrite it
    stream: bool = False
    client_wants_usage: bool = False  # a stream whose client asked for the usage chunk
    status: int = 0
    outcome: str = ""
    error_code: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Of the prompt tokens, those served from the replica's prefix cache (OpenAI's
    # usage.prompt_tokens_details.cached_tokens; 0 when the replica does not report them).
    cached_tokens: int = 0
    first_token_at: float | None = None  # perf_counter of the first content sent
    upstream_seconds: float = 0.0
    replica_id: str | None = None
    attempts: int = 0  # sends to replicas, retries included
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    finished: bool = False

    @property
    def organization_id(self) -> str | None:
        return self.caller.organization_id if self.caller else None

    @property
    def api_key_id(self) -> str | None:
        return self.caller.api_key_id if self.caller else None

    @property
    def user_id(self) -> str | None:
        return self.caller.user_id if self.caller else None

    @property
    def endpoint_name(self) -> str:
        return self.endpoint.name if self.endpoint else ""

    @property
    def latency_ms(self) -> float:
        """Milliseconds since the request arrived."""
        return (time.perf_counter() - self.started) * 1e3

    @property
    def ttft_ms(self) -> float | None:
        """Milliseconds from arrival to the first content sent (streams), or None."""
        if self.first_token_at is None:
            return None
        return (self.first_token_at - self.started) * 1e3

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
