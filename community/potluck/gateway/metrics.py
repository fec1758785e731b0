# SPDX-License-Identifier: Apache-2.0
"""Prometheus metrics of the gateway, aggregated across gunicorn workers.

With several worker processes, prometheus_client's multiprocess mode (files in
PROMETHEUS_MULTIPROC_DIR, set up by potluck.gunicorn_conf) lets any worker answer
/metrics for all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from potluck.inference.context import RequestContext

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)

REQUESTS = Counter("potluck_gateway_requests_total", "Gateway requests by model and status",
                   ["model", "endpoint", "status"])
LATENCY = Histogram("potluck_gateway_request_seconds", "Request latency seen by clients",
                    ["model", "endpoint"], buckets=_LATENCY_BUCKETS)
OVERHEAD = Histogram("potluck_gateway_overhead_seconds",
                     "Latency the gateway adds on top of the upstream replica",
                     buckets=_OVERHEAD_BUCKETS)
TOKENS = Counter("potluck_gateway_tokens_total", "Tokens metered by the gateway",
                 ["model", "kind"])
FEATURES = Gauge("potluck_features_enabled",
                 "Licence-gated features switched on in this worker (1) or off (0)",
                 ["feature"], multiprocess_mode="liveall")
REPLICAS = Gauge("potluck_replicas", "Replicas by state, as the gateway last saw them",
                 ["state"], multiprocess_mode="mostrecent")


_features_seen: set[str] = set()


def show_features(on: list[str]) -> None:
    """Export which licence-gated features this worker has on (after its refreshers)."""
    for key in _features_seen - set(on):
        FEATURES.labels(key).set(0)
    for key in on:
        FEATURES.labels(key).set(1)
    _features_seen.update(on)


def observe(ctx: RequestContext) -> None:
    """Count one finished /v1 request. The model label is the registered name the request
    resolved to, never the name a client sent (unknown names share ``unknown``), so no
    client can grow the series."""
    model = ctx.entry.name if ctx.entry is not None else "unknown"
    endpoint = ctx.endpoint_name
    seconds = ctx.latency_ms / 1e3
    REQUESTS.labels(model, endpoint, str(ctx.status or 500)).inc()
    LATENCY.labels(model, endpoint).observe(seconds)
    if ctx.upstream_seconds and not ctx.stream:
        OVERHEAD.observe(max(0.0, seconds - ctx.upstream_seconds))
    if ctx.prompt_tokens or ctx.completion_tokens:
        TOKENS.labels(model, "prompt").inc(ctx.prompt_tokens)
        TOKENS.labels(model, "completion").inc(ctx.completion_tokens)


def render() -> tuple[bytes, str]:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
