# SPDX-License-Identifier: Apache-2.0
"""Limits of the Batch API, as Django settings hold them (defaults in ``potluck.settings``,
which reads the environment once), with the bounds each must keep.

Read at call time, so a test's ``settings`` override takes effect; a node agent started
with its own environment reads it into its settings when it starts.
"""

from __future__ import annotations

from django.conf import settings

COMPLETION_WINDOW = "24h"
COMPLETION_WINDOW_SECONDS = 24 * 3600
# How many file-level problems a failed batch lists (OpenAI lists a bounded sample too).
MAX_REPORTED_ERRORS = 100


def concurrency() -> int:
    """Lines in flight at once per running batch."""
    return max(1, int(settings.BATCH_CONCURRENCY))


def max_lines() -> int:
    """Requests one batch input file may hold (OpenAI's limit), at upload and at the run."""
    return int(settings.BATCH_MAX_LINES)


def max_failed_runs() -> int:
    """Runs in a row that may end in an unexpected error before the batch fails."""
    return max(1, int(settings.BATCH_MAX_FAILED_RUNS))


def lease_seconds() -> float:
    """A runner silent this long is taken for dead; ``resume_stalled_batches`` takes over."""
    return float(settings.BATCH_LEASE_SECONDS)


def heartbeat_seconds() -> float:
    """How often a runner renews its lease and looks for cancellation and expiry."""
    return min(max(0.1, float(settings.BATCH_HEARTBEAT_SECONDS)), lease_seconds() / 3)


def read_timeout() -> float:
    """Longest silence from a replica mid-answer before the attempt counts as failed (the
    gateway's ``POTLUCK_UPSTREAM_READ_TIMEOUT``)."""
    return float(settings.GATEWAY_READ_TIMEOUT)
