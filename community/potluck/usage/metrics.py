# SPDX-License-Identifier: Apache-2.0
"""Prometheus gauges of the usage consumers' lag, for the gateway's ``/metrics``.

``update_consumer_lag()`` queries Postgres (call it from a thread, not the event loop)
and sets the gauges for every consumer registered in this process. Under gunicorn's
multiprocess mode the most recent value of any worker is served.
"""

from __future__ import annotations

from prometheus_client import Gauge

from potluck.usage.consumers import ConsumerLag, consumer_lag

LAG_RECORDS = Gauge("potluck_usage_consumer_lag_records",
                    "Committed usage records a consumer has not consumed yet",
                    ["consumer"], multiprocess_mode="mostrecent")
LAG_SECONDS = Gauge("potluck_usage_consumer_lag_seconds",
                    "Age of the oldest usage record a consumer has not consumed (0: caught up)",
                    ["consumer"], multiprocess_mode="mostrecent")
FAILED_ATTEMPTS = Gauge("potluck_usage_consumer_failed_attempts",
                        "Failed tries of a consumer since it last advanced (0: healthy)",
                        ["consumer"], multiprocess_mode="mostrecent")


def update_consumer_lag() -> list[ConsumerLag]:
    """Measure every registered consumer's lag, set the gauges, and return the figures."""
    lags = consumer_lag()
    for lag in lags:
        LAG_RECORDS.labels(lag.name).set(lag.records_behind)
        LAG_SECONDS.labels(lag.name).set(lag.seconds_behind)
        FAILED_ATTEMPTS.labels(lag.name).set(lag.attempts)
    return lags
