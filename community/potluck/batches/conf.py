# SPDX-License-Identifier: Apache-2.0
"""Limits of the Batch API, read from the environment on each use (defaults here).

Read at call time rather than import time, so a node agent started with its own
environment and a test that sets a variable both see the value they expect.
"""

from __future__ import annotations

from potluck import env

COMPLETION_WINDOW = "24h"
COMPLETION_WINDOW_SECONDS = 24 * 3600
# How many file-level problems a failed batch lists (OpenAI lists a bounded sample too).
MAX_REPORTED_ERRORS = 100


def concurrency() -> int:
    """Lines in flight at once per running batch."""
    return max(1, env.env_int("POTLUCK_BATCH_CONCURRENCY", 8))


def max_lines() -> int:
    """Requests one batch may hold (OpenAI's limit)."""
    return env.env_int("POTLUCK_BATCH_MAX_LINES", 50_000)


def max_failed_runs() -> int:
    """Runs in a row that may end in an unexpected error before the batch fails."""
    return max(1, env.env_int("POTLUCK_BATCH_MAX_FAILED_RUNS", 5))


def lease_seconds() -> float:
    """A runner silent this long is taken for dead; ``resume_stalled_batches`` takes over."""
    return float(env.env_int("POTLUCK_BATCH_LEASE_SECONDS", 30))


def heartbeat_seconds() -> float:
    """How often a runner renews its lease and looks for cancellation and expiry."""
    raw = env.env_str("POTLUCK_BATCH_HEARTBEAT_SECONDS")
    value = float(raw) if raw else 2.0
    return min(max(0.1, value), lease_seconds() / 3)


def read_timeout() -> float:
    """Longest silence from a replica mid-answer before the attempt counts as failed."""
    return float(env.env_int("POTLUCK_UPSTREAM_READ_TIMEOUT", 300))
