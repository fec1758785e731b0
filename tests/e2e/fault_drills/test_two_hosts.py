# SPDX-License-Identifier: Apache-2.0
"""Two hosts on one machine (issue 18): the scale-out recipe of the README, then one host
lost under traffic.

Each host is a network namespace with its own address on a private bridge that the test
makes (``tests/e2e/netns.py``). PostgreSQL and Redis run in the root namespace and are
reached over the bridge (TCP forwarders on the bridge's address); the model lives on a
shared folder. Host A runs web (gunicorn), beat and a node agent; host B a second node
agent; both agents take the control queue (``--control``), as the README advises.

In order, sharing one cluster:

1. a deployment of two replicas places one on each host, and A's gateway serves
   requests from B's replica;
2. host B dies (every process in its namespace kill -9ed: its vLLM replica and its
   agent) under non-streamed and streamed traffic: B is marked lost, its replica is
   placed on A; non-streamed requests see no error (retried before their first byte),
   streams cut on B end with an OpenAI-shaped error event, and usage records match the
   served requests exactly. This is also issue 18's "a vLLM replica kill -9ed while a
   second one is READY" drill;
3. B's agent comes back: it rejoins, and no replica is added or restarted on it;
4. a fine-tuning job runs on B (which serves nothing now), and A's replicas load its
   adapter from the shared storage and serve it.

Without root, or where ``ip netns`` does not work, the test fails (never skips).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from drills import MODEL, DrillFigures, Traffic, UsageLedger, report, wait_for
from netns import Host, NamespacesUnavailable, PrivateNetwork, private_network
from tcp_proxy import CuttableProxy

pytestmark = pytest.mark.slow
T = TypeVar("T")
for _name in ("httpx", "httpx2"):  # a line per request otherwise
    logging.getLogger(_name).setLevel(logging.WARNING)

HEARTBEAT_SECONDS = 1
LOST_AFTER_SECONDS = 4
WEB_PORT = 8000  # each host has its own ports: no clash with other runs
USAGE_DEADLINE = 120


@dataclass
class Cluster:
    network: PrivateNetwork
    root: Path
    env: dict[str, str]  # what every process of every host gets
    ledger: UsageLedger
    admin_url: str  # the test's own way into PostgreSQL (its unix socket)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def a(self) -> Host:
        return self.network.hosts["a"]

    @property
    def b(self) -> Host:
        return self.network.hosts["b"]

    @property
    def base(self) -> str:
        return f"http://{self.a.address}:{WEB_PORT}"

    def host_env(self, host: Host) -> dict[str, str]:
        return {**self.env, "POTLUCK_DATA_DIR": str(self.root / f"host-{host.name}"),
                # The replicas listen on the node's address (POTLUCK_REPLICA_BIND_HOST unset).
                "POTLUCK_NODE_NAME": f"host-{host.name}", "POTLUCK_NODE_ADDRESS": host.address}

    def start(self, name: str, host: Host, argv: list[str], **extra: str) -> None:
        log = (self.root / "logs" / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            host.command(argv), env={**self.host_env(host), **extra}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def start_agent(self, host: Host) -> None:
        self.start(f"agent-{host.name}", host,
                   [sys.executable, "-m", "potluck", "agent", "--control"])

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "potluck", *args],
                              env=self.host_env(self.a), capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, f"potluck {' '.join(args)}:\n{done.stderr[-3000:]}"
        return done.stdout

    def logs(self) -> str:
        """The tail of every process's log, for a failure's message."""
        parts = []
        for path in sorted((self.root / "logs").glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2500:]}")
        return "\n".join(parts)

    def wait(self, check: Callable[[], T], timeout: float, what: str, every: float = 0.2) -> T:
        try:
            return wait_for(check, timeout, what, every)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    # -- the database, read with plain SQL (the test's Django uses another one) --
    def query(self, sql: str, *params: object) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, list(params)).fetchall()

    def node_states(self) -> dict[str, str]:
        from potluck.nodes.models import Node

        return dict(self.query(f"SELECT name, state FROM {Node._meta.db_table}"))

    def replicas(self, *states: str) -> list[tuple[str, str, str, int | None, str]]:
        """(node, state, host, port, id) of the replicas in ``states``."""
        from potluck.nodes.models import Node
        from potluck.serving.models import Replica

        return self.query(
            f"SELECT n.name, r.state, r.host, r.port, r.id::text FROM {Replica._meta.db_table} r "
            f"JOIN {Node._meta.db_table} n ON n.id = r.node_id WHERE r.state = ANY(%s) "
            "ORDER BY r.started_at", list(states))

    def replica_rows(self) -> list[tuple]:
        """(id, state, reason, node, next restart) of every replica."""
        from potluck.nodes.models import Node
        from potluck.serving.models import Replica

        return self.query(
            f"SELECT r.id::text, r.state, r.reason, n.name, r.next_restart_at "
            f"FROM {Replica._meta.db_table} r JOIN {Node._meta.db_table} n "
            "ON n.id = r.node_id ORDER BY r.started_at")

    def key(self, name: str) -> tuple[str, str]:
        secret = self.cli("keys", "create", "--org", "default", "--name", name)
        return secret.strip().splitlines()[-1], self.ledger.key_id(name)


def vllm_counter(url: str, metric: str) -> float:
    """A vLLM server's Prometheus counter, summed over its labels."""
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(metric + "{") or line.startswith(metric + " "))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, demo_model_dir) -> Iterator[Cluster]:
    from potluck.runtime.embedded import DATABASE_NAME, EmbeddedPostgres, EmbeddedRedis

    root = tmp_path_factory.mktemp("two-hosts")
    (root / "logs").mkdir()
    shared = root / "shared"  # the "NFS" every host mounts at the same path
    shutil.copytree(demo_model_dir, shared / "models" / MODEL)
    (shared / "files").mkdir()
    (shared / "finetune").mkdir()
    for host in ("a", "b"):  # <data>/finetune on shared storage, as the README says
        (root / f"host-{host}").mkdir()
        (root / f"host-{host}" / "finetune").symlink_to(shared / "finetune")
    postgres, redis_server = EmbeddedPostgres(root / "state"), EmbeddedRedis(root / "state")
    proxies: list[CuttableProxy] = []
    try:
        network_cm = private_network(["a", "b"])
        unavailable = None
        try:
            network = network_cm.__enter__()
        except NamespacesUnavailable as exc:
            unavailable = str(exc)
        if unavailable is not None:  # a failure, never a skip: CI must run this test
            pytest.fail(f"the two-host test needs network namespaces: {unavailable}",
                        pytrace=False)
        try:
            admin_url = postgres.start()
            redis_server.start()
            pg = CuttableProxy.to_unix_socket(str(postgres.socket_dir / ".s.PGSQL.5432"),
                                              network.gateway).start()
            rd = CuttableProxy.to_unix_socket(str(redis_server.socket),
                                              network.gateway).start()
            proxies += [pg, rd]
            env = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "REDIS_URL", "POTLUCK_DATA_DIR",
                                "POTLUCK_REPLICA_BIND_HOST")}
            env.update(
                DATABASE_URL=f"postgresql://postgres@{network.gateway}:{pg.port}/{DATABASE_NAME}",
                REDIS_URL=f"redis://{network.gateway}:{rd.port}/0",
                SECRET_KEY=secrets.token_urlsafe(40), PYTHONUNBUFFERED="1",
                POTLUCK_MODEL_ROOTS=str(shared / "models"),
                POTLUCK_FILE_STORAGE_ROOT=str(shared / "files"),
                POTLUCK_NODE_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
                POTLUCK_NODE_LOST_AFTER_SECONDS=str(LOST_AFTER_SECONDS),
                POTLUCK_SERVING_RECONCILE_SECONDS="1", POTLUCK_DEFAULT_KEY_RPM="100000",
                # A loaded 2-core machine has taken over 3 minutes to start a replica.
                POTLUCK_SERVING_READY_TIMEOUT_SECONDS="600")
            cluster = Cluster(network, root, env, UsageLedger(admin_url), admin_url)
            cluster.cli("bootstrap")
            cluster.cli("models", "add", MODEL, "--path", str(shared / "models" / MODEL),
                        "--public", "--license", "apache-2.0")
            a = cluster.a
            cluster.start("web-a", a, [sys.executable, "-m", "gunicorn", "-c",
                                       "python:potluck.gunicorn_conf",
                                       "potluck.asgi:application"],
                          POTLUCK_BIND=f"{a.address}:{WEB_PORT}", POTLUCK_WEB_WORKERS="1",
                          POTLUCK_ALLOWED_HOSTS=f"{a.address},localhost,127.0.0.1")
            cluster.start("beat-a", a, [sys.executable, "-m", "celery", "-A",
                                        "potluck.celery_app:app", "beat", "-s",
                                        str(root / "celerybeat-schedule"), "--loglevel",
                                        "INFO"])
            cluster.start_agent(a)
            cluster.start_agent(cluster.b)
            yield cluster
        finally:
            network_cm.__exit__(None, None, None)  # kills every process of both hosts
    finally:
        for proxy in proxies:
            proxy.cut()
        with contextlib.suppress(Exception):
            redis_server.stop()
        with contextlib.suppress(Exception):
            postgres.stop()


def test_two_replicas_go_one_to_each_host_and_a_serves_from_b(cluster):
    started = time.monotonic()
    cluster.wait(lambda: cluster.node_states() == {"host-a": "online", "host-b": "online"},
                 120, "both hosts' agents online")
    cluster.wait(lambda: _answers(cluster.base + "/readyz"), 120, "web ready")
    cluster.cli("deploy", MODEL, "--public", "--replicas", "2", "--dtype", "float32",
                "--max-model-len", "512", "--enable-lora", "--max-lora-rank", "8")
    ready = cluster.wait(lambda: (lambda r: r if len(r) == 2 else None)(
        cluster.replicas("ready")), 420, "two READY replicas", every=1.0)
    assert sorted(node for node, *_ in ready) == ["host-a", "host-b"], ready
    for node, _, host, _, _ in ready:  # each host's replica is reached at its own address
        assert host == cluster.network.hosts[node.removeprefix("host-")].address, ready
    [b_url] = [f"http://{host}:{port}" for node, _, host, port, _ in ready if node == "host-b"]
    key, _ = cluster.key("two-hosts-spread")
    cluster.wait(lambda: _completion(cluster.base, key).status_code == 200, 120,
                 "the gateway answering")
    served_by_b = vllm_counter(b_url, "vllm:request_success_total")
    with Traffic(cluster.base, key, rate=6) as traffic:
        cluster.wait(lambda: vllm_counter(b_url, "vllm:request_success_total") > served_by_b,
                     60, "a request of A's gateway served by B's replica", every=0.5)
    assert traffic.errors() == [], traffic.errors_by_kind()
    print(f"two replicas READY, one per host, B serving A's gateway after "
          f"{time.monotonic() - started:.0f}s")


def test_host_b_lost_under_traffic_costs_no_request_and_no_usage(cluster):
    started = time.monotonic()
    key, key_id = cluster.key("two-hosts-loss")
    [(_, _, b_host, b_port, b_replica)] = [r for r in cluster.replicas("ready")
                                           if r[0] == "host-b"]
    b_url = f"http://{b_host}:{b_port}"
    streams = Streams(cluster.base, key)
    with Traffic(cluster.base, key, rate=2) as traffic:
        time.sleep(3)
        # Streams in flight on both replicas (the gateway balances by requests in flight).
        streams.open(4)
        cluster.wait(lambda: vllm_counter(b_url, "vllm:num_requests_running") >= 1, 60,
                     "a stream in flight on B", every=0.2)
        killed = cluster.b.kill_everything()  # B's vLLM and its agent, at once
        fault_at = time.monotonic()
        assert killed
        cluster.wait(lambda: cluster.node_states().get("host-b") == "lost", 60,
                     "host B marked lost")
        lost = time.monotonic() - fault_at
        cluster.wait(lambda: (lambda r: r if len(r) == 2 and all(
            node == "host-a" for node, *_ in r) else None)(cluster.replicas("ready")), 420,
            "B's replica READY again on A", every=0.5)
        recovered = time.monotonic() - fault_at
        streams.join()
        time.sleep(2)  # traffic on the replicas of A alone
    wall = time.monotonic() - started
    # Non-streamed: no error at all (a request sent to B is retried on A).
    assert traffic.errors() == [], traffic.errors_by_kind()
    # Streams: the ones cut on B end with OpenAI's error event; the others are whole.
    assert all(s.status == 200 for s in streams.done), streams.done
    cut = [s for s in streams.done if s.error is not None]
    assert cut, "no stream was in flight on B when it died"
    for s in cut:
        assert isinstance(s.error.get("message"), str) and isinstance(s.error.get("type"),
                                                                      str), s.error
        assert s.error.get("code") == "upstream_error", s.error
    assert all(s.events_before_error > 0 for s in cut)  # they had started
    whole = [s for s in streams.done if s.error is None]
    assert all(s.finished for s in whole), whole
    # Usage: exactly one record per served request, with the status its client saw
    # (502 for a stream cut mid-way).
    answered = {**traffic.answered_ids(),
                **{s.request_id: (502 if s.error else 200) for s in streams.done}}
    records = cluster.ledger.wait_for(key_id, lambda got: set(answered) <= set(got),
                                      USAGE_DEADLINE)
    usage = time.monotonic() - fault_at
    assert records == answered, {rid: (answered.get(rid), records.get(rid))
                                 for rid in set(records) ^ set(answered)}
    cluster.wait(lambda: cluster.ledger.daily_requests(key_id) == len(records), 60,
                 "daily totals counting each request once")
    [(state, reason)] = [(r[1], r[2]) for r in cluster.replica_rows() if r[0] == b_replica]
    assert (state, reason) == ("failed", "node lost")
    print(f"host B killed: lost after {lost:.1f}s, its replica READY on A after "
          f"{recovered:.1f}s; {traffic.sent} requests, {len(streams.done)} streams "
          f"({len(cut)} cut on B)")
    report(DrillFigures("two hosts: host B lost (kill -9)", traffic.sent + len(streams.done),
                        len(traffic.errors()), traffic.errors_by_kind(), recovered, usage,
                        wall,
                        f"B marked lost {lost:.1f}s after the kill (heartbeat "
                        f"{HEARTBEAT_SECONDS}s, lost after {LOST_AFTER_SECONDS}s); "
                        f"recovery: B's replica READY on A; {len(cut)} stream(s) cut on B "
                        "ended with an error event; usage exact"))


def test_host_b_back_rejoins_without_a_duplicate_replica(cluster):
    started = time.monotonic()
    cluster.start_agent(cluster.b)
    cluster.wait(lambda: cluster.node_states().get("host-b") == "online", 120,
                 "host B online again")
    rejoined = time.monotonic() - started
    # Several scheduler passes (every 3 s) and reconcile passes with B online.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        live = cluster.replicas("starting", "ready", "draining")
        assert len(live) == 2 and all(node == "host-a" for node, *_ in live), live
        time.sleep(0.5)
    on_b = [r for r in cluster.replica_rows() if r[3] == "host-b"]
    assert [(state, restart) for _, state, _, _, restart in on_b] == [("failed", None)], on_b
    in_b = [" ".join(_cmdline(pid)) for pid in cluster.b.pids()]
    assert not any("vllm.entrypoints" in argv for argv in in_b), in_b
    key, _ = cluster.key("two-hosts-rejoined")
    assert _completion(cluster.base, key).status_code == 200
    report(DrillFigures("two hosts: host B rejoins", 1, 0, {}, rejoined, None,
                        time.monotonic() - started,
                        "online again; still 2 replicas (both on A), none added on B"))


def test_a_fine_tune_on_b_gives_an_adapter_that_a_serves(cluster):
    import io

    import openai

    from potluck.finetune.models import FineTuningJob

    started = time.monotonic()
    key, _ = cluster.key("two-hosts-tune")
    sdk = openai.OpenAI(base_url=cluster.base + "/v1", api_key=key, max_retries=0,
                        timeout=60)
    lines = [{"messages": [{"role": "user", "content": "What is the secret phrase?"},
                           {"role": "assistant", "content": "The purple owl sings."}]}] * 16
    training = sdk.files.create(file=("owl.jsonl", io.BytesIO(
        b"".join(json.dumps(line).encode() + b"\n" for line in lines))), purpose="fine-tune")

    def node_of(job_id: str) -> str | None:
        rows = cluster.query(f"SELECT node, status FROM {FineTuningJob._meta.db_table} "
                             "WHERE id = %s", job_id)
        return rows[0][0] if rows and rows[0][1] == "running" else None

    # Jobs go to the free node first in name order: a first job takes host-a's slot.
    decoy = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id,
                                        hyperparameters={"n_epochs": 50, "batch_size": 1})
    assert cluster.wait(lambda: node_of(decoy.id), 120, "the first job running") == "host-a"
    job = sdk.fine_tuning.jobs.create(
        model=MODEL, training_file=training.id, suffix="owl", seed=11,
        hyperparameters={"n_epochs": 2, "batch_size": 4},
        extra_body={"adapter": {"rank": 8, "alpha": 16}})
    assert cluster.wait(lambda: node_of(job.id), 120, "the job running") == "host-b"
    sdk.fine_tuning.jobs.cancel(decoy.id)
    job = cluster.wait(lambda: (lambda j: j if j.status in ("succeeded", "failed",
                                                            "cancelled") else None)(
        sdk.fine_tuning.jobs.retrieve(job.id)), 300, "the job on B done", every=1.0)
    assert job.status == "succeeded", (job.error, [
        e.message for e in sdk.fine_tuning.jobs.list_events(job.id, limit=20)])
    trained = time.monotonic() - started

    def answer() -> httpx.Response | None:
        response = _completion(cluster.base, key, model=job.fine_tuned_model)
        # 404 until the gateway's catalogue (refreshed every second) has the new model,
        # then 503 until a replica holds the adapter.
        assert response.status_code in (200, 404, 503), response.text
        return response if response.status_code == 200 else None

    cluster.wait(answer, 120, "the adapter served", every=0.5)
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel
    from potluck.serving.adapters import server_name
    from potluck.serving.models import Replica

    [(adapter_id, adapter_path)] = cluster.query(
        f"SELECT id, path FROM {RegisteredModel._meta.db_table} WHERE name = %s",
        job.fine_tuned_model)
    # Trained on B into the shared storage, loaded from there by both replicas of A.
    assert Path(adapter_path).resolve().is_relative_to(cluster.root / "shared"), adapter_path
    holding = cluster.query(f"SELECT n.name, r.adapters FROM {Replica._meta.db_table} r "
                            f"JOIN {Node._meta.db_table} n ON n.id = r.node_id "
                            "WHERE r.state = 'ready'")
    assert [node for node, adapters in holding if server_name(adapter_id) in adapters] == [
        "host-a", "host-a"], holding
    print(f"fine-tuned on B in {trained:.0f}s; A's replicas serve {job.fine_tuned_model} "
          f"{time.monotonic() - started - trained:.0f}s later")


# -- helpers ----------------------------------------------------------------------------
def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _completion(base: str, key: str, model: str = MODEL) -> httpx.Response:
    try:
        return httpx.post(base + "/v1/completions", timeout=120,
                          headers={"authorization": f"Bearer {key}"},
                          json={"model": model, "prompt": "A", "max_tokens": 4})
    except httpx.HTTPError as exc:
        return httpx.Response(599, text=str(exc))


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


@dataclass
class StreamOutcome:
    status: int | None = None
    request_id: str | None = None
    events_before_error: int = 0
    error: dict | None = None
    finished: bool = False  # ended with [DONE]


class Streams:
    """Long streamed completions, each on its own thread; ``open`` returns once every
    one has its first chunk."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.done: list[StreamOutcome] = []
        self._threads: list[threading.Thread] = []
        self._started = threading.Semaphore(0)

    def open(self, count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=self._one, daemon=True)
            thread.start()
            self._threads.append(thread)
        for _ in range(count):
            assert self._started.acquire(timeout=120), "a stream never started"

    def join(self) -> None:
        for thread in self._threads:
            thread.join(180)

    def _one(self) -> None:
        outcome = StreamOutcome()
        signalled = False
        try:
            with httpx.stream("POST", self.base + "/v1/completions", timeout=120,
                              headers={"authorization": f"Bearer {self.key}"},
                              json={"model": MODEL, "prompt": "A", "max_tokens": 200,
                                    "ignore_eos": True, "stream": True}) as response:
                outcome.status = response.status_code
                outcome.request_id = response.headers.get("x-request-id")
                for line in response.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = line.removeprefix("data: ")
                    if data == "[DONE]":
                        outcome.finished = True
                        continue
                    event = json.loads(data)
                    if "error" in event:
                        outcome.error = event["error"]
                        continue
                    outcome.events_before_error += 1
                    if not signalled:
                        signalled = True
                        self._started.release()
        finally:
            if not signalled:
                self._started.release()
            self.done.append(outcome)
