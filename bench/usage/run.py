# SPDX-License-Identifier: Apache-2.0
"""`make bench-usage`: what the usage log's ordering lock costs the roll-up, and how fast
consumers are fed, measured side by side in one run.

Run under `potluck services run` (PostgreSQL up, DATABASE_URL set) with a throwaway
POTLUCK_DATA_DIR. The roll-up's own insert (``services.record_events``, batches of 500)
is timed with 1 and 3 concurrent writers, alternating rounds between the log as shipped
(the insert trigger takes the advisory lock, so commit order is seq order) and the same
trigger without the lock (the naive design, which can skip records). Then consumers are
fed through ``potluck.usage.consumers.feed``: a no-op one, and one writing a row per
record in the feed's transaction.

Prints a table and, last, one JSON line with every figure. The trigger is restored to the
shipped one at the end, even when the bench fails.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from importlib import import_module
from typing import Any

ROUNDS = int(os.environ.get("BENCH_ROUNDS", 5))
BATCH = 500
BATCHES_PER_WRITER = int(os.environ.get("BENCH_BATCHES_PER_WRITER", 10))
FEED_RECORDS = int(os.environ.get("BENCH_FEED_RECORDS", 50_000))
MIGRATION = "potluck.usage.migrations.0003_usage_log_and_consumer_cursors"


def setup() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from potluck.accounts import services

    call_command("migrate", interactive=False, verbosity=0)
    return services.create_organization("Bench usage")


def set_trigger(locked: bool) -> None:
    from django.db import connection

    shipped = import_module(MIGRATION).JOIN_LOG_FUNCTION
    lock_line = shipped.splitlines()[next(i for i, line in enumerate(shipped.splitlines())
                                          if "pg_advisory_xact_lock" in line)]
    with connection.cursor() as cursor:
        cursor.execute(shipped if locked else shipped.replace(lock_line, ""))


def events(org: Any, count: int) -> list[Any]:
    from potluck.usage.stream import UsageEvent, new_request_id

    now = time.time()
    return [UsageEvent(request_id=new_request_id(), organization_id=str(org.pk),
                       api_key_id=None, model=f"m{i % 4}", endpoint="chat.completions",
                       status=200, stream=False, prompt_tokens=i % 100, completion_tokens=7,
                       latency_ms=10.0, ttft_ms=None, replica_id=None, created_at=now)
            for i in range(count)]


def write(org: Any, writers: int) -> float:
    """Records/s of ``writers`` threads each recording BATCHES_PER_WRITER batches."""
    from django.db import connection

    from potluck.usage import services

    batches = [[events(org, BATCH) for _ in range(BATCHES_PER_WRITER)] for _ in range(writers)]
    start = threading.Barrier(writers + 1)

    def run(mine: Sequence[Any]) -> None:
        try:
            start.wait()
            for batch in mine:
                services.record_events(batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(mine,)) for mine in batches]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return writers * BATCHES_PER_WRITER * BATCH / (time.perf_counter() - began)


class NoOp:
    def __init__(self, name: str, batch_size: int) -> None:
        self.name, self.batch_size = name, batch_size

    def consume(self, records: Sequence[Any]) -> None:
        pass


class RowPerRecord(NoOp):
    def consume(self, records: Sequence[Any]) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO bench_usage_effect (request_id) VALUES (%s)",
                               [(r.request_id,) for r in records])


def feed_rate(consumer: Any) -> float:
    from potluck.usage.consumers import Outcome, feed

    began = time.perf_counter()
    consumed = 0
    while True:
        result = feed(consumer, budget_s=3600)
        consumed += result.consumed
        if result.outcome != Outcome.CONSUMED:
            break
    assert result.outcome == Outcome.CAUGHT_UP, result
    return consumed / (time.perf_counter() - began)


def main() -> int:
    org = setup()
    from django.db import connection

    from potluck.usage.models import UsageRecord

    write_rates: dict[str, list[float]] = {}
    try:
        for _ in range(ROUNDS):
            for locked in (True, False):
                set_trigger(locked)
                for writers in (1, 3):
                    key = f"{'lock' if locked else 'nolock'}_w{writers}"
                    write_rates.setdefault(key, []).append(write(org, writers))
    finally:
        set_trigger(True)
    written = UsageRecord.objects.count()
    expected = ROUNDS * 2 * 4 * BATCHES_PER_WRITER * BATCH
    medians = {key: statistics.median(rates) for key, rates in write_rates.items()}

    from potluck.usage import services

    for chunk in range(0, FEED_RECORDS, 5000):
        services.record_events(events(org, min(5000, FEED_RECORDS - chunk)))
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_usage_effect (request_id text)")
    feed_rates = {f"noop_b{size}": feed_rate(NoOp(f"bench-noop-{size}", size))
                  for size in (500, 5000)}
    feed_rates["row_b500"] = feed_rate(RowPerRecord("bench-rows", 500))

    results = {
        "records_written": written, "records_expected": expected,
        **{f"write_{key}_rps": round(value) for key, value in medians.items()},
        "lock_cost_ratio_w1": round(medians["lock_w1"] / medians["nolock_w1"], 3),
        "lock_cost_ratio_w3": round(medians["lock_w3"] / medians["nolock_w3"], 3),
        **{f"feed_{key}_rps": round(value) for key, value in feed_rates.items()},
    }
    print(f"roll-up inserts, records/s (median of {ROUNDS} rounds, batches of {BATCH})")
    print(f"{'writers':>8} {'log lock':>10} {'no lock':>10} {'lock/no lock':>13}")
    for w in (1, 3):
        print(f"{w:>8} {medians[f'lock_w{w}']:>10.0f} {medians[f'nolock_w{w}']:>10.0f} "
              f"{results[f'lock_cost_ratio_w{w}']:>13.3f}")
    print("feeding consumers, records/s")
    for key, value in feed_rates.items():
        print(f"{key:>10} {value:>10.0f}")
    print(json.dumps(results))
    return 0 if written == expected else 1


if __name__ == "__main__":
    sys.exit(main())
