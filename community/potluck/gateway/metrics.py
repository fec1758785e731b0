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
REPLICAS = Gauge("potluck_replicas", "Replicas by state, as the gateway last saw them",
                 ["state"], multiprocess_mode="mostrecent")


def render() -> tuple[bytes, str]:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
