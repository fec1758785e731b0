# SPDX-License-Identifier: Apache-2.0
"""What every fault drill uses: steady client traffic, a look inside a running Potluck
(its processes, logs and usage records), and the figures each drill reports.

A drill injects one fault into a running system under steady traffic and reports, in the
session's summary (``pytest_terminal_summary`` in this folder's conftest): requests sent,
client errors (by kind), time to recovery and time until usage was complete. Nothing is
asserted about those times beyond generous deadlines; usage is compared request by
request (by ``x-request-id``). Drills of one machine run against one shared
``potluck up`` (``test_potluck_up_rides_out_single_faults.py``); drills across hosts can
reuse ``Traffic``, ``UsageLedger`` and ``report`` with their own topology.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

T = TypeVar("T")
MODEL = "potluck-demo"


# -- figures ----------------------------------------------------------------------------
@dataclass
class DrillFigures:
    drill: str
    sent: int
    client_errors: int
    errors_by_kind: dict[str, int]
    recovery_seconds: float | None  # the fault → the service whole again
    usage_complete_seconds: float | None  # the fault → every record in Postgres
    wall_seconds: float
    notes: str = ""


FIGURES: list[DrillFigures] = []


def report(figures: DrillFigures) -> None:
    """Keep the figures for the session's summary (and print them with the test)."""
    FIGURES.append(figures)
    print("DRILL " + json.dumps(asdict(figures)))


def summary_lines() -> list[str]:
    if not FIGURES:
        return []
    lines = [f"{'drill':<34} {'sent':>5} {'errors':>6} {'recovery s':>10} "
             f"{'usage s':>8} {'wall s':>7}  notes"]
    for f in FIGURES:
        lines.append(f"{f.drill:<34} {f.sent:>5} {f.client_errors:>6} "
                     f"{_num(f.recovery_seconds):>10} {_num(f.usage_complete_seconds):>8} "
                     f"{f.wall_seconds:>7.1f}  {f.notes}"
                     + (f" errors: {dict(f.errors_by_kind)}" if f.errors_by_kind else ""))
    return lines


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.2) -> T:
    """``check()``'s first truthy value; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f}s"
        time.sleep(every)


# -- traffic ----------------------------------------------------------------------------
@dataclass
class Outcome:
    sent_at: float  # monotonic
    request_id: str | None
    status: int | None  # None: no HTTP answer (connection refused, reset)
    shaped: bool  # a completion, or OpenAI's error object with an x-request-id
    kind: str  # "ok", "http 503 model_not_ready", "no answer: ReadError", ...


class Traffic:
    """Non-streamed completions at ``rate`` a second from a background thread, each on
    its own worker thread (a slow answer does not slow the pace), while in the ``with``."""

    def __init__(self, base: str, key: str, rate: float = 4.0, max_tokens: int = 4) -> None:
        self.url = base + "/v1/completions"
        self.headers = {"authorization": f"Bearer {key}"}
        self.body = {"model": MODEL, "prompt": "A", "max_tokens": max_tokens,
                     "temperature": 0}
        self.rate = rate
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="drill-client")
        self._client = httpx.Client(timeout=120)
        self._pacer = threading.Thread(target=self._pace, daemon=True)

    def __enter__(self) -> Traffic:
        self._pacer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._pacer.join()
        self._pool.shutdown(wait=True)
        self._client.close()

    def _pace(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._pool.submit(self._one)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _one(self) -> None:
        sent_at = time.monotonic()
        try:
            response = self._client.post(self.url, headers=self.headers, json=self.body)
        except httpx.HTTPError as exc:
            outcome = Outcome(sent_at, None, None, False, f"no answer: {type(exc).__name__}")
        else:
            outcome = _judge(sent_at, response)
        with self._lock:
            self.outcomes.append(outcome)

    # -- what happened --
    @property
    def sent(self) -> int:
        return len(self.outcomes)

    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]

    def errors_by_kind(self) -> dict[str, int]:
        return dict(Counter(o.kind for o in self.errors()))

    def answered_ids(self) -> dict[str, int]:
        """Request id → HTTP status, for every request that got an answer."""
        return {o.request_id: o.status for o in self.outcomes
                if o.request_id is not None and o.status is not None}

    def ok_ids(self) -> set[str]:
        return {o.request_id for o in self.outcomes if o.status == 200 and o.request_id}

    def healthy_since(self, since: float) -> float | None:
        """Seconds from ``since`` to the first request after which every one succeeded."""
        later = sorted((o for o in self.outcomes if o.sent_at >= since),
                       key=lambda o: o.sent_at)
        first_good = None
        for outcome in later:
            if outcome.status == 200:
                first_good = first_good if first_good is not None else outcome.sent_at
            else:
                first_good = None
        return None if first_good is None else first_good - since


def _judge(sent_at: float, response: httpx.Response) -> Outcome:
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        return Outcome(sent_at, request_id, response.status_code, False,
                       f"http {response.status_code} not JSON: {response.text[:60]!r}")
    if response.status_code == 200:
        shaped = isinstance(body, dict) and bool(body.get("choices"))
        return Outcome(sent_at, request_id, 200, shaped and bool(request_id), "ok")
    error = body.get("error") if isinstance(body, dict) else None
    shaped = (isinstance(error, dict) and isinstance(error.get("message"), str)
              and isinstance(error.get("type"), str) and bool(request_id))
    code = error.get("code") if isinstance(error, dict) else None
    return Outcome(sent_at, request_id, response.status_code, shaped,
                   f"http {response.status_code} {code}")


# -- inside a running `potluck up` ------------------------------------------------------
class UsageLedger:
    """Usage records in a Potluck's PostgreSQL, read with plain SQL (the test process's own
    Django talks to another database)."""

    def __init__(self, database_url: str) -> None:
        from potluck.accounts.models import ApiKey
        from potluck.usage.models import UsageDaily, UsageRecord

        self.url = database_url
        self.records = UsageRecord._meta.db_table
        self.daily = UsageDaily._meta.db_table
        self.keys = ApiKey._meta.db_table

    def _query(self, sql: str, params: Iterable[Any]) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, list(params)).fetchall()

    def key_id(self, name: str) -> str:
        [(key_id,)] = self._query(f"SELECT id FROM {self.keys} WHERE name = %s", [name])
        return str(key_id)

    def of_key(self, key_id: str) -> dict[str, int]:
        """Request id → recorded status, for every record of the key."""
        try:
            rows = self._query(f"SELECT request_id, status FROM {self.records} "
                               "WHERE api_key_id = %s", [key_id])
        except Exception:  # the database is restarting: nothing readable yet
            return {}
        return dict(rows)

    def daily_requests(self, key_id: str) -> int:
        [(total,)] = self._query(f"SELECT COALESCE(SUM(requests), 0) FROM {self.daily} "
                                 "WHERE api_key_id = %s", [key_id])
        return int(total)

    def wait_for(self, key_id: str, expected: Callable[[dict[str, int]], bool],
                 timeout: float) -> dict[str, int]:
        return wait_for(lambda: (lambda got: got if expected(got) else None)(
            self.of_key(key_id)), timeout, "complete usage records", every=0.5)


@dataclass
class PotluckUnderTest:
    """A running `potluck up` (``tests/e2e/embedded.RunningPotluck``) seen from outside."""

    up: Any
    ledger: UsageLedger = field(init=False)

    def __post_init__(self) -> None:
        from potluck.env import running_services

        self.ledger = UsageLedger(running_services(self.up.data)["DATABASE_URL"])

    @property
    def base(self) -> str:
        return self.up.base

    @property
    def data(self) -> Path:
        return self.up.data

    def output(self) -> str:
        return self.up.output()

    def log(self, name: str) -> Path:
        return self.data / "logs" / f"{name}.log"

    def log_size(self, name: str) -> int:
        return self.log(name).stat().st_size

    def log_since(self, name: str, offset: int) -> str:
        with self.log(name).open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def new_key(self, name: str) -> tuple[str, str]:
        """(secret, id) of a fresh key of the default organization."""
        created = self.up.cli("keys", "create", "--org", "default", "--name", name)
        assert created.returncode == 0, created.stderr
        return created.stdout.strip().splitlines()[-1], self.ledger.key_id(name)

    # -- processes --
    def child(self, name: str) -> psutil.Process | None:
        """`up`'s live child ``name`` (agent, beat, web), from the pid file `up` keeps."""
        try:
            proc = psutil.Process(int((self.data / "run" / f"{name}.pid").read_text()))
            alive = proc.status() != psutil.STATUS_ZOMBIE and proc.ppid() == self.up.process.pid
        except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
            return None
        return proc if alive else None

    def web_workers(self) -> list[psutil.Process]:
        master = self.child("web")
        return [] if master is None else master.children()

    def redis_pid(self) -> int:
        return int((self.data / "run" / "redis.pid").read_text())

    def postmaster_pid(self) -> int:
        return int((self.data / "postgres" / "postmaster.pid").read_text().split()[0])

    def replica_pids(self) -> set[int]:
        """vLLM servers (process-group leaders) serving from this data dir."""
        return {p.pid for p in self.up.ours()
                if "vllm.entrypoints" in " ".join(p.cmdline()) and os.getpgid(p.pid) == p.pid}

    def kill_replicas(self) -> None:
        for pid in self.replica_pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    # -- calls --
    def completion(self, key: str, **body: Any) -> httpx.Response:
        return httpx.post(self.base + "/v1/completions", timeout=120,
                          headers={"authorization": f"Bearer {key}"},
                          json={"model": MODEL, "prompt": "A", "max_tokens": 4, **body})

    def get(self, path: str, key: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30,
                         headers={"authorization": f"Bearer {key}"})

    def wait_serving(self, key: str, timeout: float) -> None:
        """Until the demo model answers (503 while vLLM starts)."""
        def answers() -> bool:
            try:
                return self.completion(key).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout, "answer from the demo model", every=1.0)
