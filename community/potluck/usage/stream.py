# SPDX-License-Identifier: Apache-2.0
"""The usage stream: one Redis stream entry per finished gateway request.

The gateway appends (XADD, never waiting on Postgres) and the roll-up reads it back
through a consumer group. An entry has exactly one field, ``r``: the compact JSON of a
``UsageEvent``, e.g.::

    XADD potluck:usage:stream * r '{"request_id":"req_9f…","organization_id":"…",…}'

Never trim this stream (no MAXLEN): an entry leaves it only after its record is
committed to Postgres; trimming would drop usage that was never recorded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from potluck.protocol import endpoints

if TYPE_CHECKING:
    import redis

try:  # faster, but not a dependency we may count on
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None  # type: ignore[assignment]

STREAM_KEY = "potluck:usage:stream"
DEAD_LETTER_KEY = "potluck:usage:dead"
GROUP = "potluck-rollup"
FIELD = "r"
ENDPOINTS = endpoints.NAMES

# Column limits of UsageRecord: checked here, so the database never rejects a batch.
MAX_REQUEST_ID = 64
MAX_MODEL = 200
MAX_TOKENS = 2**31 - 1


class MalformedEvent(ValueError):
    """A stream entry that can never become a usage record (it goes to the dead letters)."""


@dataclass(frozen=True, slots=True)
class UsageEvent:
    request_id: str
    organization_id: str
    api_key_id: str | None
    model: str
    endpoint: str
    status: int
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    ttft_ms: float | None
    replica_id: str | None
    created_at: float  # epoch seconds
    # Prompt tokens served from the prefix cache (a part of prompt_tokens); absent in
    # entries of older gateways, which read as 0.
    cached_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    @property
    def created_time(self) -> datetime:
        return datetime.fromtimestamp(self.created_at, tz=UTC)


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(UsageEvent))
REQUIRED = frozenset(FIELDS) - {"api_key_id", "ttft_ms", "replica_id", "cached_tokens"}


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


def _dumps(value: dict[str, Any]) -> bytes | str:
    if orjson is not None:
        return orjson.dumps(value)
    # default=str: a UUID serializes as orjson would serialize it.
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)


def encode(event: UsageEvent) -> dict[str, bytes | str]:
    """The fields of the stream entry for ``event`` (what the gateway passes to XADD)."""
    return {FIELD: _dumps(event.as_dict())}


def append(conn: redis.Redis, event: UsageEvent) -> str:
    """Append one event (sync producers and tests); returns the stream entry id."""
    entry_id = conn.xadd(STREAM_KEY, encode(event))
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def decode(fields: dict[Any, Any]) -> UsageEvent:
    """The event in a stream entry's fields; raises ``MalformedEvent`` saying what is wrong."""
    raw = fields.get(FIELD.encode(), fields.get(FIELD))
    if raw is None:
        raise MalformedEvent(f"no {FIELD!r} field in the entry")
    try:
        data = orjson.loads(raw) if orjson is not None else json.loads(raw)
    except ValueError as exc:
        raise MalformedEvent(f"{FIELD!r} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedEvent(f"{FIELD!r} is not a JSON object")
    missing = sorted(REQUIRED - data.keys())
    if missing:
        raise MalformedEvent(f"missing fields: {', '.join(missing)}")
    # Unknown keys are ignored: a newer gateway may add fields before the roll-up knows them.
    return UsageEvent(
        request_id=_text(data, "request_id", MAX_REQUEST_ID),
        organization_id=_uuid(data, "organization_id"),
        api_key_id=_optional_uuid(data, "api_key_id"),
        model=_text(data, "model", MAX_MODEL),
        endpoint=_endpoint(data),
        status=_int(data, "status", 100, 599),
        stream=_bool(data, "stream"),
        prompt_tokens=_int(data, "prompt_tokens", 0, MAX_TOKENS),
        completion_tokens=_int(data, "completion_tokens", 0, MAX_TOKENS),
        latency_ms=_number(data, "latency_ms"),
        ttft_ms=None if data.get("ttft_ms") is None else _number(data, "ttft_ms"),
        replica_id=_optional_uuid(data, "replica_id"),
        created_at=_timestamp(data),
        cached_tokens=_int(data, "cached_tokens", 0, MAX_TOKENS) if "cached_tokens" in data
        else 0,
    )


def _bad(name: str, expected: str, value: Any) -> MalformedEvent:
    shown = repr(value)
    return MalformedEvent(f"{name}: expected {expected}, got {shown[:80]}")


def _text(data: dict[str, Any], name: str, max_length: int) -> str:
    value = data[name]
    if not isinstance(value, str) or not value or len(value) > max_length or "\x00" in value:
        raise _bad(name, f"a non-empty string of at most {max_length} characters", value)
    return value


def _uuid(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise _bad(name, "a UUID", value) from None


def _optional_uuid(data: dict[str, Any], name: str) -> str | None:
    return None if data.get(name) is None else _uuid(data, name)


def _endpoint(data: dict[str, Any]) -> str:
    value = data["endpoint"]
    if value not in ENDPOINTS:
        raise _bad("endpoint", " or ".join(sorted(ENDPOINTS)), value)
    return value


def _int(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(name, f"an integer from {low} to {high}", value)
    return value


def _bool(data: dict[str, Any], name: str) -> bool:
    value = data[name]
    if not isinstance(value, bool):
        raise _bad(name, "true or false", value)
    return value


def _number(data: dict[str, Any], name: str) -> float:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value >= 0):
        raise _bad(name, "a finite number >= 0", value)
    return float(value)


def _timestamp(data: dict[str, Any]) -> float:
    value = _number(data, "created_at")
    try:
        datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise _bad("created_at", "epoch seconds", value) from None
    return value
