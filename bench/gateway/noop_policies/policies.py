# SPDX-License-Identifier: Apache-2.0
"""Three policies that change nothing, so the bench measures the pipeline's own cost.

- ``NoopRequest``: looks at the request and keeps it (``before`` returns None).
- ``NoopResponse``: looks at a non-streamed answer and keeps it (``after`` returns None).
- ``NoopStream``: a stream transformer: every SSE event passes through as it came, and
  nothing is added before ``[DONE]``. Today's ``request_policies`` hook has no stream
  stage, so only its ``before``/``after`` run; ``transform`` is ready for the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from potluck.extensions import GatewayCall


class NoopRequest:
    def before(self, call: GatewayCall) -> dict[str, Any] | None:
        return None

    def after(self, call: GatewayCall, response: dict[str, Any]) -> dict[str, Any] | None:
        return None


class NoopResponse:
    def before(self, call: GatewayCall) -> dict[str, Any] | None:
        return None

    def after(self, call: GatewayCall, response: dict[str, Any]) -> dict[str, Any] | None:
        return None


class NoopStream:
    def before(self, call: GatewayCall) -> dict[str, Any] | None:
        return None

    def after(self, call: GatewayCall, response: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def transform(self, call: GatewayCall, events: Iterable[bytes]) -> Iterable[bytes]:
        """SSE events in, the same events out, in order (no hold-back, nothing added)."""
        return events


def all_policies() -> list[tuple[str, Any]]:
    return [("bench-noop-request", NoopRequest()), ("bench-noop-response", NoopResponse()),
            ("bench-noop-stream", NoopStream())]
