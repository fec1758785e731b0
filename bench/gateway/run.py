# SPDX-License-Identifier: Apache-2.0
"""`make bench-gateway`: what the /v1 gateway adds, measured side by side in one run.

Run under `potluck services run` (PostgreSQL and Redis up, DATABASE_URL/REDIS_URL set)
with a throwaway POTLUCK_DATA_DIR. One Potluck gateway worker (gunicorn + uvicorn, as
deployed, with auth, limits, usage and three no-op policies on) routes to nginx answering
fixed OpenAI bodies, and to a real vLLM-CPU replica. Beside it, in the same run: the
upstream called directly, a raw ASGI + aiohttp forwarder under the same server stack (the
Python ceiling) and the LiteLLM proxy (in a throwaway venv). After each phase the usage
stream is drained into Postgres and reconciled with what the upstream received.

Prints a table per phase, a summary of ratios and, last, one JSON line with every figure.
Exits 1 when a phase failed to run or usage did not reconcile; a missed performance goal
is reported (``goals_met``), not turned into a failure.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cpu_designs
import gateway_proc
import litellm_proxy
import nginx
import openloop
import orjson
import procs
import profile_summary
import setup_rows
import stats
import ttft
import usage_check
import vllm_replica
import wrk
from procs import say
from stats import median, r, table

# Durations: the whole bench takes about 20 minutes on a 2-core machine.
REPS = int(os.environ.get("BENCH_REPS", 3))  # wrk runs per target, interleaved
C1_SECONDS = int(os.environ.get("BENCH_C1_SECONDS", 15))  # per target, over the reps
RATE = float(os.environ.get("BENCH_RATE", 200))
RATE_SECONDS = float(os.environ.get("BENCH_RATE_SECONDS", 60))
C32_SECONDS = int(os.environ.get("BENCH_C32_SECONDS", 15))  # per target, over the reps
STREAM_REQUESTS = int(os.environ.get("BENCH_STREAM_REQUESTS", 300))
LEVER_SECONDS = int(os.environ.get("BENCH_LEVER_SECONDS", 4))  # per run
LEVER_REPS = int(os.environ.get("BENCH_LEVER_REPS", 3))
VLLM_PAIRS = int(os.environ.get("BENCH_VLLM_PAIRS", 8))  # per design, interleaved
VLLM_ROUND_REQUESTS = int(os.environ.get("BENCH_VLLM_ROUND_REQUESTS", 24))
VLLM_CONCURRENCY = 8
VLLM_RAW = os.environ.get("BENCH_VLLM_RAW", "1") not in ("0", "")
CPU_DESIGNS = [d.strip() for d in os.environ.get(
    "BENCH_CPU_DESIGNS", "none,nice19,idle,pin").split(",") if d.strip()]
PHASES = [p.strip() for p in os.environ.get(
    "BENCH_PHASES", "c1,rate200,c32,stream_c1,levers,profile,vllm_c8").split(",") if p.strip()]

# Issue 11's targets. The gateway is Potluck's; raw and LiteLLM are references.
GOALS = {"c1_added_p50_ms": 0.25, "c1_added_p99_ms": 1.5, "rate200_added_p99_ms": 10.0,
         "rate200_errors": 0, "c32_over_raw": 0.9, "stream_added_ttft_p50_ms": 1.0,
         "vllm_ratio": 0.95}

CHAT_PATH = "/v1/chat/completions"
CHAT_BODY = orjson.dumps({"model": "bench-fake", "max_tokens": 16,
                          "messages": [{"role": "user", "content": "Say hello."}]})
STREAM_BODY = orjson.dumps({"model": "bench-fake-sse", "max_tokens": 16, "stream": True,
                            "messages": [{"role": "user", "content": "Say hello."}]})
# Server-stack levers: Potluck's web with one thing changed (see README, "Levers").
LEVERS: dict[str, dict[str, Any]] = {
    "as deployed": {},
    "access log: all (not non-inference)": {"env": {"POTLUCK_WEB_ACCESS_LOG": "all"}},
    "access log: off": {"env": {"POTLUCK_WEB_ACCESS_LOG": "off"}},
    "h11 (not httptools)": {"args": ("-k", "workers.H11Worker")},
    "asyncio loop (not uvloop)": {"args": ("-k", "workers.AsyncioLoopWorker")},
    "no plug-in policies": {"plugins": ""},
}
KEY_NAMES = ("warmup", "c1", "rate200", "c32", "stream", "vllm",
             *(f"lever{i}" for i in range(len(LEVERS))))


class Bench:
    def __init__(self, data_dir: Path) -> None:
        self.work = data_dir / "bench"
        self.work.mkdir(parents=True, exist_ok=True)
        self.log = self.work / "wrk.log"
        self.data_dir = data_dir
        self.results: dict[str, Any] = {}
        self.usage: dict[str, dict[str, Any]] = {}
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.nginx: nginx.Nginx | None = None
        self.gateway: gateway_proc.GatewayProcess | None = None
        self.raw: gateway_proc.GatewayProcess | None = None
        self.litellm: litellm_proxy.LiteLLM | None = None
        self.vllm = None
        self.extra: list[Any] = []  # lever gateways, stopped at the end whatever happens
        self.keys: dict[str, setup_rows.ApiKey] = {}

    # -- set-up -------------------------------------------------------------------------
    def setup(self) -> None:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        say(f"machine: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min): other "
            "users' load falls on every path alike, as the paths are interleaved")
        tools = procs.ensure_tools()
        self.wrk = tools["wrk"]
        setup_rows.setup_django()
        setup_rows.migrate()
        if "vllm_c8" in PHASES:
            say("building potluck-demo for the vLLM phase (cached in the data dir)...")
            self.model_dir = vllm_replica.build_model(self.data_dir)
        self.nginx = nginx.Nginx(self.work / "nginx", tools["nginx"])
        self.nginx.start()
        self.vllm_port = procs.free_port()
        org = setup_rows.create_org()
        self.keys = {name: setup_rows.create_key(org, f"bench-{name}") for name in KEY_NAMES}
        setup_rows.serve_model("bench-fake", self.nginx.json_port)
        setup_rows.serve_model("bench-fake-sse", self.nginx.sse_port)
        setup_rows.serve_model(vllm_replica.MODEL_NAME, self.vllm_port)
        self.gateway = gateway_proc.start(self.work)
        upstreams = {"bench-fake": self.nginx.json_url, "bench-fake-sse": self.nginx.sse_url,
                     vllm_replica.MODEL_NAME: f"http://127.0.0.1:{self.vllm_port}"}
        self.raw = gateway_proc.start(self.work, "raw-forwarder", app="raw_forwarder:app",
                                      env={"BENCH_RAW_UPSTREAMS": orjson.dumps(
                                          upstreams).decode()}, plugins="")
        say(f"nginx :{self.nginx.json_port} (json) :{self.nginx.sse_port} (sse), "
            f"gateway {self.gateway.url} (worker pid {self.gateway.worker_pids()}, "
            f"POTLUCK_PLUGINS=noop_policies), raw forwarder {self.raw.url}")
        if {"c1", "c32", "stream_c1"} & set(PHASES):
            self.start_litellm(upstreams)
        for url in self.targets().values():  # connections, caches, first-request start
            wrk.run(self.wrk, url + CHAT_PATH, self.script("warmup"), connections=4,
                    seconds=2, log=self.log)

    def start_litellm(self, upstreams: dict[str, str]) -> None:
        say(f"installing the LiteLLM proxy {litellm_proxy.VERSION} into a throwaway venv "
            f"({self.work / 'litellm-venv'})...")
        exe, why = litellm_proxy.install(self.work)
        if exe is None:
            self.skip_litellm(why)
            return
        try:
            self.litellm = litellm_proxy.start(exe, self.work, {
                k: v for k, v in upstreams.items() if k.startswith("bench-fake")})
        except Exception as exc:
            self.skip_litellm(f"it did not start ({exc})"[:300])
            return
        say(f"LiteLLM proxy {litellm_proxy.VERSION} at {self.litellm.url}")

    def skip_litellm(self, why: str) -> None:
        line = f"LiteLLM proxy: SKIPPED, {why}"
        say(line)
        self.notes.append(line)
        self.results["litellm"] = {"skipped": why}

    def targets(self) -> dict[str, str]:
        """Base URLs of the nginx phases' paths: direct, Potluck, raw, LiteLLM."""
        assert self.nginx is not None and self.gateway is not None and self.raw is not None
        found = {"direct": self.nginx.json_url, "gateway": self.gateway.url,
                 "raw": self.raw.url}
        if self.litellm is not None:
            found["litellm"] = self.litellm.url
        return found

    def server_pids(self) -> dict[str, int]:
        """The process (tree) serving each path: its CPU per request is measured too."""
        found: dict[str, int] = {}
        for name, server in (("direct", self.nginx), ("gateway", self.gateway),
                             ("raw", self.raw), ("litellm", self.litellm)):
            process = getattr(server, "process", None)
            if process is not None:
                found[name] = process.pid
        return found

    def headers(self, key: str) -> dict[str, str]:
        return {"content-type": "application/json",
                "authorization": f"Bearer {self.keys[key].secret}"}

    def script(self, key: str, body: bytes = CHAT_BODY) -> Path:
        return wrk.write_script(self.work / f"wrk-{key}.lua", body, self.keys[key].secret)

    def gateway_window(self, which: str, action: Callable[[], Any]) -> tuple[Any, list[str]]:
        """Run ``action`` and return what it returned with the request ids nginx logged
        (from a Potluck gateway: the others send no x-request-id) meanwhile."""
        assert self.nginx is not None
        offset = self.nginx.log_size(which)
        result = action()
        time.sleep(0.3)  # the last access-log lines
        ids = [rid for _, rid in self.nginx.log_since(which, offset) if rid]
        return result, ids

    def reconcile(self, phase: str, key: str, **kwargs: Any) -> None:
        check = usage_check.reconcile(phase, self.keys[key].id,
                                      ignore_key_id=self.keys["warmup"].id, **kwargs)
        self.usage[phase] = check.as_dict()
        if not check.ok:
            self.failures.append(f"usage of phase {phase} does not reconcile")
        say(table(f"usage reconciliation: {phase}", ["expected", "from", "records",
                                                     "distinct ids", "daily total",
                                                     "missing", "abandoned (<= max)",
                                                     "unexpected", "statuses",
                                                     "tokens ok", "left in stream", "ok"],
                  [[check.expected, check.expected_from, check.records,
                    check.distinct_request_ids, check.daily_requests, check.missing,
                    f"{check.abandoned} (<= {check.max_abandoned})", check.unexpected,
                    " ".join(f"{k}:{v}" for k, v in check.statuses.items()),
                    check.tokens_per_ok is None
                    or check.ok_completion_tokens == check.tokens_per_ok * check.ok_records,
                    check.stream_left, "yes" if check.ok else "NO"]]))
        say()

    def wrk_interleaved(self, key: str, connections: int, seconds: int, reps: int,
                        targets: dict[str, str] | None = None,
                        potluck: set[str] | None = None,
                        ) -> tuple[dict[str, list[wrk.WrkResult]], list[str]]:
        """``reps`` rounds; in each, one wrk run per target (the order rotating). Returns
        the runs by target and the request ids nginx logged from the ``potluck`` ones."""
        targets = targets or self.targets()
        potluck = {"gateway"} if potluck is None else potluck
        pids = self.server_pids()
        script = self.script(key)
        names = list(targets)
        runs: dict[str, list[wrk.WrkResult]] = {name: [] for name in names}
        ids: list[str] = []
        for rep in range(reps):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                def one(url: str = targets[name], pid: int | None = pids.get(name)
                        ) -> wrk.WrkResult:
                    before = procs.tree_cpu_seconds(pid) if pid else None
                    result = wrk.run(self.wrk, url + CHAT_PATH, script,
                                     connections=connections, seconds=seconds, log=self.log)
                    if pid and before is not None:
                        result.server_cpu_s = procs.tree_cpu_seconds(pid) - before
                    return result
                if name in potluck:
                    result, logged = self.gateway_window("json", one)
                    ids += logged
                else:
                    result = one()
                runs[name].append(result)
        return runs, ids

    # -- phases -------------------------------------------------------------------------
    def phase_c1(self) -> None:
        seconds = max(1, C1_SECONDS // REPS)
        runs, ids = self.wrk_interleaved("c1", 1, seconds, REPS)
        out: dict[str, Any] = {"reps": REPS, "seconds_per_run": seconds, "targets": {}}
        for name, xs in runs.items():
            entry = {"runs": [_wrk_dict(x) for x in xs],
                     "p50_ms": r(median([x.p50_ms for x in xs])),
                     "p99_ms": r(median([x.p99_ms for x in xs])),
                     "rps": r(median([x.rps for x in xs]), 1),
                     "server_cpu_us_per_request": _cpu_us(xs),
                     "errors": sum(x.errors for x in xs)}
            if name != "direct":  # added = path minus direct in the same rep, median of reps
                entry["added_p50_ms"] = r(median([x.p50_ms - d.p50_ms for x, d in
                                                  zip(xs, runs["direct"], strict=True)]))
                entry["added_p99_ms"] = r(median([x.p99_ms - d.p99_ms for x, d in
                                                  zip(xs, runs["direct"], strict=True)]))
            out["targets"][name] = entry
        g = out["targets"]["gateway"]
        out["added_p50_ms"], out["added_p99_ms"] = g["added_p50_ms"], g["added_p99_ms"]
        out["met"] = (g["added_p50_ms"] <= GOALS["c1_added_p50_ms"]
                      and g["added_p99_ms"] <= GOALS["c1_added_p99_ms"] and g["errors"] == 0)
        self.results["c1"] = out
        say(_paths_table(f"1. concurrency 1, wrk -t1 -c1, {REPS} x {seconds}s per path "
                         "(interleaved; medians of the runs)", out["targets"],
                         ["p50_ms", "p99_ms", "rps", "added_p50_ms", "added_p99_ms",
                          "server_cpu_us_per_request", "errors"],
                         ["p50 ms", "p99 ms", "req/s", "added p50 ms", "added p99 ms",
                          "server CPU us/req", "errors"]))
        say(f"   Potluck added latency: p50 {g['added_p50_ms']} ms (goal <= "
            f"{GOALS['c1_added_p50_ms']}), p99 {g['added_p99_ms']} ms (goal <= "
            f"{GOALS['c1_added_p99_ms']}) -> {'MET' if out['met'] else 'MISSED'}")
        self.reconcile("c1", "c1", expected_ids=ids, tokens_per_ok=nginx.COMPLETION_TOKENS,
                       max_abandoned=REPS)

    def phase_rate(self) -> None:
        assert self.nginx is not None and self.gateway is not None
        runs = {}
        runs["direct"] = openloop.run(self.nginx.json_url + CHAT_PATH, CHAT_BODY,
                                      self.headers("rate200"), rate=RATE, seconds=RATE_SECONDS,
                                      warmup_headers=self.headers("warmup"))
        runs["gateway"], ids = self.gateway_window("json", lambda: openloop.run(
            self.gateway.url + CHAT_PATH, CHAT_BODY, self.headers("rate200"), rate=RATE,
            seconds=RATE_SECONDS, warmup_headers=self.headers("warmup")))
        d, g = runs["direct"], runs["gateway"]
        added50, added99 = g.p(50) - d.p(50), g.p(99) - d.p(99)
        met = added99 <= GOALS["rate200_added_p99_ms"] and g.error_count == 0
        self.results["rate200"] = {
            name: {"sent": x.sent, "ok": x.ok, "errors": x.error_count,
                   "error_kinds": dict(x.errors), "achieved_rate": r(x.achieved_rate, 1),
                   "p50_ms": r(x.p(50)), "p90_ms": r(x.p(90)), "p99_ms": r(x.p(99)),
                   "p999_ms": r(x.p(99.9)), "max_ms": r(max(x.latencies_ms, default=math.nan)),
                   "max_send_lag_ms": r(x.max_send_lag_ms)}
            for name, x in runs.items()}
        self.results["rate200"].update({
            "rate": RATE, "seconds": RATE_SECONDS, "added_p50_ms": r(added50),
            "added_p99_ms": r(added99), "goal_added_p99_ms": GOALS["rate200_added_p99_ms"],
            "met": met})
        say(table(f"2. open loop {RATE:.0f} req/s for {RATE_SECONDS:.0f} s (latency from the "
                  "scheduled send time)",
                  ["path", "sent", "ok", "errors", "rate/s", "p50 ms", "p90 ms", "p99 ms",
                   "p99.9 ms", "max ms", "send lag max ms"],
                  [[name, x.sent, x.ok, x.error_count, x.achieved_rate, x.p(50), x.p(90),
                    x.p(99), x.p(99.9), max(x.latencies_ms, default=math.nan),
                    x.max_send_lag_ms] for name, x in runs.items()]))
        say(f"   added latency: p50 {added50:.3f} ms, p99 {added99:.3f} ms (goal <= "
            f"{GOALS['rate200_added_p99_ms']} ms), gateway errors {g.error_count} (goal 0) "
            f"-> {'MET' if met else 'MISSED'}")
        self.reconcile("rate200", "rate200", expected_ids=ids,
                       tokens_per_ok=nginx.COMPLETION_TOKENS)
        say(f"   (client sent {g.sent} through the gateway, upstream logged {len(ids)})")

    def phase_c32(self) -> None:
        seconds = max(1, C32_SECONDS // REPS)
        runs, ids = self.wrk_interleaved("c32", 32, seconds, REPS)
        out: dict[str, Any] = {"reps": REPS, "seconds_per_run": seconds, "targets": {}}
        for name, xs in runs.items():
            entry = {"runs": [_wrk_dict(x) for x in xs],
                     "rps": r(median([x.rps for x in xs]), 1),
                     "p50_ms": r(median([x.p50_ms for x in xs])),
                     "p99_ms": r(median([x.p99_ms for x in xs])),
                     "server_cpu_us_per_request": _cpu_us(xs),
                     "errors": sum(x.errors for x in xs)}
            if name != "raw":  # the same rep's raw run: minutes apart at most
                entry["over_raw"] = r(median([x.rps / w.rps for x, w in
                                              zip(xs, runs["raw"], strict=True)]), 4)
                raw_cpu = out["targets"].get("raw", {}).get("server_cpu_us_per_request") or \
                    _cpu_us(runs["raw"])
                if entry["server_cpu_us_per_request"] and raw_cpu:
                    entry["cpu_per_request_over_raw"] = r(
                        entry["server_cpu_us_per_request"] / raw_cpu, 2)
            out["targets"][name] = entry
        g = out["targets"]["gateway"]
        out["gateway_rps"], out["gateway_over_raw"] = g["rps"], g["over_raw"]
        if "litellm" in out["targets"]:
            out["litellm_over_raw"] = out["targets"]["litellm"]["over_raw"]
            out["gateway_over_litellm"] = r(g["rps"] / out["targets"]["litellm"]["rps"], 2)
        out["met"] = g["over_raw"] >= GOALS["c32_over_raw"] and g["errors"] == 0
        self.results["c32"] = out
        say(_paths_table(f"3. closed loop, wrk -t1 -c32, {REPS} x {seconds}s per path "
                         "(interleaved; medians of the runs)", out["targets"],
                         ["rps", "over_raw", "p50_ms", "p99_ms", "server_cpu_us_per_request",
                          "cpu_per_request_over_raw", "errors"],
                         ["req/s", "÷ raw", "p50 ms", "p99 ms", "server CPU us/req",
                          "CPU/req ÷ raw", "errors"]))
        say(f"   Potluck ÷ raw forwarder: {g['over_raw']} (goal >= {GOALS['c32_over_raw']}) -> "
            f"{'MET' if out['met'] else 'MISSED'}"
            + (f"; LiteLLM ÷ raw: {out['litellm_over_raw']}" if "litellm_over_raw" in out
               else ""))
        self.reconcile("c32", "c32", expected_ids=ids, tokens_per_ok=nginx.COMPLETION_TOKENS,
                       max_abandoned=32 * REPS)

    def phase_profile(self) -> None:
        """Opt-in (BENCH_PYSPY=1 or a path to py-spy): unmeasured c=1 and c=32 runs of the
        gateway recorded by py-spy; raw stacks in the work dir, a summary printed."""
        pyspy = os.environ.get("BENCH_PYSPY", "")
        if not pyspy:
            say("   (set BENCH_PYSPY=1 to profile the gateway worker with py-spy)")
            return
        if pyspy in ("1", "true", "yes"):
            pyspy = (shutil.which("py-spy", path=str(Path(sys.executable).parent))
                     or shutil.which("py-spy") or "")
        if not pyspy:
            raise RuntimeError("BENCH_PYSPY is set but there is no py-spy (pip install py-spy)")
        assert self.gateway is not None
        pid = self.gateway.worker_pids()[0]
        script = self.script("warmup")
        out: dict[str, Any] = {}
        for connections in (1, 32):
            path = self.work / f"profile-c{connections}.txt"
            seconds = max(5, C32_SECONDS // REPS)
            profiler = procs.spawn([pyspy, "record", "-p", str(pid), "-d", str(seconds),
                                    "-r", "250", "--nonblocking", "--format", "raw",
                                    "-o", str(path)], self.work / "py-spy.log")
            try:
                time.sleep(0.5)
                cpu_before = procs.schedstat(pid)[0]
                run = wrk.run(self.wrk, self.gateway.url + CHAT_PATH, script,
                              connections=connections, seconds=seconds, log=self.log)
                cpu = procs.schedstat(pid)[0] - cpu_before
                profiler.wait(60)
            finally:
                procs.stop(profiler)
            total, by_category, _ = profile_summary.summarize(path)
            per_request_us = cpu / run.requests * 1e6 if run.requests else math.nan
            out[f"c{connections}"] = {
                "file": str(path), "samples": total, "requests": run.requests,
                "worker_cpu_us_per_request": r(per_request_us, 1),
                "share": {k: r(v / total, 4) for k, v in by_category.most_common()}
                if total else {},
                "us_per_request": {k: r(v / total * per_request_us, 1)
                                   for k, v in by_category.most_common()} if total else {}}
            say(f"   py-spy, c={connections}: {run.rps:,.0f} req/s while recorded, the worker's "
                f"event loop on a CPU {per_request_us:,.0f} us per request (py-spy's own "
                "sampling included):")
            say("   " + profile_summary.report(path, top=12).replace("\n", "\n   "))
        self.results["profile"] = out

    def phase_stream(self) -> None:
        assert self.nginx is not None
        urls = self.targets()
        urls["direct"] = self.nginx.sse_url
        targets = {name: (url + CHAT_PATH, self.headers("stream"), self.headers("warmup"))
                   for name, url in urls.items()}
        ttft.run(targets, STREAM_BODY, count=0, warmup=10)  # with the warm-up key
        series, ids = self.gateway_window("sse", lambda: ttft.run(
            targets, STREAM_BODY, count=STREAM_REQUESTS))
        d = series["direct"]
        out: dict[str, Any] = {}
        for name, x in series.items():
            out[name] = {"sent": x.sent, "ok": x.ok, "errors": dict(x.errors),
                         "ttft_p50_ms": r(x.p(50)), "ttft_p90_ms": r(x.p(90)),
                         "ttft_p99_ms": r(x.p(99)),
                         "total_p50_ms": r(stats.percentile(x.total_ms, 50))}
            if name != "direct":
                out[name]["added_ttft_p50_ms"] = r(x.p(50) - d.p(50))
                out[name]["added_ttft_p99_ms"] = r(x.p(99) - d.p(99))
        g = out["gateway"]
        out["added_ttft_p50_ms"], out["added_ttft_p99_ms"] = (g["added_ttft_p50_ms"],
                                                              g["added_ttft_p99_ms"])
        out["met"] = (g["added_ttft_p50_ms"] <= GOALS["stream_added_ttft_p50_ms"]
                      and not g["errors"])
        self.results["stream_c1"] = out
        say(table(f"4. streaming, concurrency 1, {STREAM_REQUESTS} requests per path "
                  "(alternated request by request)",
                  ["path", "sent", "ok", "errors", "TTFT p50 ms", "TTFT p99 ms",
                   "added TTFT p50 ms", "added TTFT p99 ms", "whole stream p50 ms"],
                  [[name, x.sent, x.ok, sum(x.errors.values()), x.p(50), x.p(99),
                    out[name].get("added_ttft_p50_ms"), out[name].get("added_ttft_p99_ms"),
                    stats.percentile(x.total_ms, 50)] for name, x in series.items()]))
        say(f"   Potluck added TTFT: p50 {g['added_ttft_p50_ms']} ms (goal <= "
            f"{GOALS['stream_added_ttft_p50_ms']}; every event through the no-op stream "
            f"transformer, parsed and serialized again) -> "
            f"{'MET' if out['met'] else 'MISSED'}")
        self.reconcile("stream", "stream", expected_ids=ids,
                       tokens_per_ok=nginx.STREAM_COMPLETION_TOKENS)
        say(f"   (client sent {series['gateway'].sent} through the gateway, upstream logged "
            f"{len(ids)})")

    def phase_levers(self) -> None:
        """Potluck's web with one server-stack setting changed, c=1 and c=32, interleaved."""
        assert self.gateway is not None and self.nginx is not None
        variants: dict[str, str] = {}
        pids: dict[str, int] = {}
        keys: dict[str, str] = {}
        for i, (name, how) in enumerate(LEVERS.items()):
            keys[name] = f"lever{i}"
            if not how:
                variants[name] = self.gateway.url
                pids[name] = self.gateway.process.pid
                continue
            proc = gateway_proc.start(self.work, f"lever{i}", args=how.get("args", ()),
                                      env=how.get("env"),
                                      plugins=how.get("plugins", "noop_policies"))
            self.extra.append(proc)
            variants[name] = proc.url
            pids[name] = proc.process.pid
            wrk.run(self.wrk, proc.url + CHAT_PATH, self.script("warmup"), connections=4,
                    seconds=2, log=self.log)
        runs: dict[str, dict[int, list[wrk.WrkResult]]] = {n: {1: [], 32: []} for n in variants}
        ids: dict[str, list[str]] = {n: [] for n in variants}
        names = list(variants)
        for rep in range(LEVER_REPS):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                script = self.script(keys[name])
                for connections in (1, 32):
                    before = procs.tree_cpu_seconds(pids[name])
                    result, logged = self.gateway_window("json", lambda c=connections, n=name,
                                                         s=script: wrk.run(
                        self.wrk, variants[n] + CHAT_PATH, s, connections=c,
                        seconds=LEVER_SECONDS, log=self.log))
                    result.server_cpu_s = procs.tree_cpu_seconds(pids[name]) - before
                    runs[name][connections].append(result)
                    ids[name] += logged
        out: dict[str, Any] = {"reps": LEVER_REPS, "seconds_per_run": LEVER_SECONDS,
                               "variants": {}}
        base = runs["as deployed"]
        for name in names:
            c1, c32 = runs[name][1], runs[name][32]
            out["variants"][name] = {
                "c1_p50_ms": r(median([x.p50_ms for x in c1])),
                "c1_p99_ms": r(median([x.p99_ms for x in c1])),
                "c1_p50_vs_deployed_ms": r(median([x.p50_ms - b.p50_ms for x, b in
                                                   zip(c1, base[1], strict=True)])),
                "c32_rps": r(median([x.rps for x in c32]), 1),
                "c32_vs_deployed": r(median([x.rps / b.rps for x, b in
                                             zip(c32, base[32], strict=True)]), 4),
                # The web server's CPU per request at c=32: steadier than req/s on a
                # shared machine (another user's load takes CPU time, not CPU per request).
                "c32_cpu_us_per_request": _cpu_us(c32),
                "c32_cpu_vs_deployed": r(median([
                    x.server_cpu_us_per_request / b.server_cpu_us_per_request
                    for x, b in zip(c32, base[32], strict=True)
                    if x.server_cpu_us_per_request and b.server_cpu_us_per_request]), 3),
                "errors": sum(x.errors for x in c1 + c32)}
        self.results["levers"] = out
        say(_paths_table(f"6. server-stack levers: Potluck's web with one thing changed, "
                         f"{LEVER_REPS} x {LEVER_SECONDS}s at c=1 and at c=32 each "
                         "(interleaved; medians)", out["variants"],
                         ["c1_p50_ms", "c1_p99_ms", "c1_p50_vs_deployed_ms", "c32_rps",
                          "c32_vs_deployed", "c32_cpu_us_per_request", "c32_cpu_vs_deployed",
                          "errors"],
                         ["c=1 p50 ms", "c=1 p99 ms", "p50 vs deployed ms", "c=32 req/s",
                          "c=32 ÷ deployed", "CPU us/req c=32", "CPU/req ÷ deployed",
                          "errors"], first="variant"))
        for name in names:
            self.reconcile(f"lever: {name}", keys[name], expected_ids=ids[name],
                           tokens_per_ok=nginx.COMPLETION_TOKENS,
                           max_abandoned=LEVER_REPS * 33)
        for proc in self.extra:
            procs.stop(proc.process)
        self.extra = []

    def phase_vllm(self) -> None:
        assert self.gateway is not None and self.raw is not None
        designs = cpu_designs.available()
        configured = cpu_designs.configured()
        if configured.name not in designs:
            designs[configured.name] = configured
        chosen = [designs[name] for name in CPU_DESIGNS if name in designs]
        if configured.name not in {d.name for d in chosen}:
            chosen.append(configured)
        extra_env = dict(item.split("=", 1) for item in os.environ.get(
            "BENCH_VLLM_ENV", "").split() if "=" in item)
        say(f"starting vLLM-CPU ({self.model_dir}) on :{self.vllm_port}"
            + (f" with {extra_env}" if extra_env else "") + " ...")
        started = time.monotonic()
        self.vllm = vllm_replica.start(self.model_dir, self.vllm_port,
                                       self.work / "vllm.log", extra_env)
        say(f"vLLM ready after {time.monotonic() - started:.0f} s")
        switcher = cpu_designs.Switcher(self.vllm.pid)
        urls = {"direct": f"http://127.0.0.1:{self.vllm_port}/v1/completions",
                "gateway": self.gateway.url + "/v1/completions",
                "raw": self.raw.url + "/v1/completions"}
        paths = ["direct", "gateway"] + (["raw"] if VLLM_RAW else [])
        vllm_replica.rounds([(name, urls[name], self.headers("warmup"), "none")
                             for name in paths],
                            requests=16, concurrency=VLLM_CONCURRENCY)  # warm-up
        plan: list[vllm_replica.Step] = []
        for pair in range(VLLM_PAIRS):  # rotate both the designs and the paths' order
            order = chosen[pair % len(chosen):] + chosen[:pair % len(chosen)]
            for design in order:
                names = paths[pair % len(paths):] + paths[:pair % len(paths)]
                plan += [(name, urls[name], self.headers("vllm"), design.name)
                         for name in names]
        worker = (self.gateway.worker_pids() or [0])[0]
        sched: dict[str, list[float]] = {d.name: [0.0, 0.0] for d in chosen}
        # CPU seconds the rest of the machine (other users' processes: not this bench's
        # process tree, its services or vLLM) used during each design's rounds.
        others: dict[str, list[float]] = {d.name: [0.0, 0.0] for d in chosen}
        ours = os.getppid()  # `potluck services run`: the services, this bench, its servers
        mark: dict[str, Any] = {}

        def before(step: vllm_replica.Step) -> None:
            switcher.use(designs[step[3]])
            mark["sched"] = procs.schedstat(worker)
            mark["busy"], mark["ours"] = procs.machine_busy_seconds(), procs.tree_cpu_seconds(
                ours)

        def after(result: vllm_replica.Round) -> None:
            foreign = ((procs.machine_busy_seconds() - mark["busy"])
                       - (procs.tree_cpu_seconds(ours) - mark["ours"]))
            others[result.tag][0] += max(0.0, foreign)
            others[result.tag][1] += result.seconds
            if result.target == "gateway":
                now = procs.schedstat(worker)
                sched[result.tag][0] += now[0] - mark["sched"][0]
                sched[result.tag][1] += now[1] - mark["sched"][1]

        rounds = vllm_replica.rounds(plan, requests=VLLM_ROUND_REQUESTS,
                                     concurrency=VLLM_CONCURRENCY, before=before, after=after)
        switcher.use(designs["none"])
        out: dict[str, Any] = {"max_tokens": vllm_replica.MAX_TOKENS,
                               "concurrency": VLLM_CONCURRENCY, "pairs": VLLM_PAIRS,
                               "round_requests": VLLM_ROUND_REQUESTS, "designs": {},
                               "configured_design": configured.name}
        rows = []
        for design in chosen:
            mine = [x for x in rounds if x.tag == design.name]
            per = {name: [x for x in mine if x.target == name] for name in paths}
            tps = {name: sum(x.tokens for x in xs) / sum(x.seconds for x in xs)
                   for name, xs in per.items()}
            pair_ratios = [g.tokens_per_s / d.tokens_per_s
                           for d, g in zip(per["direct"], per["gateway"], strict=True)]
            entry: dict[str, Any] = {
                "what": design.what, "share": design.share.describe(),
                "direct_tokens_per_s": r(tps["direct"], 1),
                "gateway_tokens_per_s": r(tps["gateway"], 1),
                "pair_ratios": [r(x, 4) for x in pair_ratios],
                "median_pair_ratio": r(median(pair_ratios), 4),
                "ratio_of_sums": r(tps["gateway"] / tps["direct"], 4),
                "errors": sum(sum(x.errors.values()) for x in mine),
                # The gateway worker's event-loop thread during its rounds: time on a CPU,
                # and time runnable but waiting for one.
                "gateway_worker_cpu_ms": r(sched[design.name][0] * 1e3, 1),
                "gateway_worker_runqueue_wait_ms": r(sched[design.name][1] * 1e3, 1),
                # Others' load: CPUs' worth used by processes outside this bench meanwhile.
                "others_cpus": r(others[design.name][0] / others[design.name][1], 2)
                if others[design.name][1] else None}
            if "raw" in per:
                raw_ratios = [w.tokens_per_s / d.tokens_per_s
                              for d, w in zip(per["direct"], per["raw"], strict=True)]
                entry["raw_tokens_per_s"] = r(tps["raw"], 1)
                entry["raw_median_pair_ratio"] = r(median(raw_ratios), 4)
            out["designs"][design.name] = entry
            rows.append([design.name + (" (configured)" if design is configured else ""),
                         design.share.describe(), entry["direct_tokens_per_s"],
                         entry["gateway_tokens_per_s"], entry.get("raw_tokens_per_s"),
                         entry["median_pair_ratio"], entry.get("raw_median_pair_ratio"),
                         ", ".join(f"{x:.2f}" for x in pair_ratios),
                         entry["gateway_worker_cpu_ms"],
                         entry["gateway_worker_runqueue_wait_ms"], entry["others_cpus"],
                         entry["errors"]])
        head = out["designs"][configured.name]
        out["ratio"] = head["median_pair_ratio"]
        out["errors"] = sum(e["errors"] for e in out["designs"].values())
        out["met"] = out["ratio"] >= GOALS["vllm_ratio"] and out["errors"] == 0
        self.results["vllm_c8"] = out
        say(table(f"5. vLLM-CPU potluck-demo by CPU-sharing design: c={VLLM_CONCURRENCY}, "
                  f"max_tokens={vllm_replica.MAX_TOKENS} (ignore_eos), {VLLM_ROUND_REQUESTS} "
                  f"requests a round, {VLLM_PAIRS} rounds per path and design (interleaved)",
                  ["design", "replica gets", "direct tok/s", "Potluck tok/s", "raw tok/s",
                   "Potluck ÷ direct", "raw ÷ direct", "pairs", "worker on CPU ms",
                   "worker waiting ms", "others' CPUs", "errors"], rows))
        say(f"   tokens/s through Potluck ÷ direct with the configured design "
            f"({configured.name}: {configured.share.describe()}): median of pairs "
            f"{out['ratio']} (goal >= {GOALS['vllm_ratio']}) -> "
            f"{'MET' if out['met'] else 'MISSED'}")
        sent = sum(x.requests for x in rounds if x.target == "gateway")
        self.reconcile("vllm", "vllm", expected_count=sent,
                       tokens_per_ok=vllm_replica.MAX_TOKENS)
        procs.stop(self.vllm)
        self.vllm = None

    # -- the whole run ------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        phases = {"c1": self.phase_c1, "rate200": self.phase_rate, "c32": self.phase_c32,
                  "stream_c1": self.phase_stream, "levers": self.phase_levers,
                  "profile": self.phase_profile, "vllm_c8": self.phase_vllm}
        try:
            self.setup()
            for name in PHASES:
                say(f"== phase {name} ==")
                try:
                    phases[name]()
                except Exception as exc:
                    traceback.print_exc()
                    self.results[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                    self.failures.append(f"phase {name} failed: {type(exc).__name__}")
                say()
        except Exception as exc:
            traceback.print_exc()
            self.failures.append(f"set-up failed: {type(exc).__name__}: {exc}"[:500])
        finally:
            procs.stop(self.vllm)
            for proc in self.extra:
                procs.stop(proc.process)
            for server in (self.gateway, self.raw, self.litellm):
                procs.stop(server.process if server else None)
            if self.nginx is not None:
                self.nginx.stop()
            # Throwaway, and full of third-party sources that the repository's own rules
            # (licence headers) must not trip over if the data dir is kept for its logs.
            shutil.rmtree(self.work / "litellm-venv", ignore_errors=True)
        return self.report(time.monotonic() - started)

    def report(self, seconds: float) -> int:
        res = self.results
        g = "gateway"
        summary = [
            ["c=1 added p50 (ms)", _get(res, "c1", "targets", g, "added_p50_ms"),
             _get(res, "c1", "targets", "raw", "added_p50_ms"),
             _get(res, "c1", "targets", "litellm", "added_p50_ms"),
             f"<= {GOALS['c1_added_p50_ms']}", _met(res, "c1")],
            ["c=1 added p99 (ms)", _get(res, "c1", "targets", g, "added_p99_ms"),
             _get(res, "c1", "targets", "raw", "added_p99_ms"),
             _get(res, "c1", "targets", "litellm", "added_p99_ms"),
             f"<= {GOALS['c1_added_p99_ms']}", _met(res, "c1")],
            ["c=32 req/s", _get(res, "c32", "targets", g, "rps"),
             _get(res, "c32", "targets", "raw", "rps"),
             _get(res, "c32", "targets", "litellm", "rps"), "-", "-"],
            ["c=32 ÷ raw forwarder", _get(res, "c32", "targets", g, "over_raw"), 1.0,
             _get(res, "c32", "targets", "litellm", "over_raw"),
             f">= {GOALS['c32_over_raw']}", _met(res, "c32")],
            ["stream added TTFT p50 (ms)", _get(res, "stream_c1", g, "added_ttft_p50_ms"),
             _get(res, "stream_c1", "raw", "added_ttft_p50_ms"),
             _get(res, "stream_c1", "litellm", "added_ttft_p50_ms"),
             f"<= {GOALS['stream_added_ttft_p50_ms']}", _met(res, "stream_c1")],
            ["200 req/s added p99 (ms)", _get(res, "rate200", "added_p99_ms"), None, None,
             f"<= {GOALS['rate200_added_p99_ms']}", _met(res, "rate200")],
            ["200 req/s errors", _get(res, "rate200", g, "errors"), None, None, "0",
             _met(res, "rate200")],
            ["vLLM tok/s ÷ direct (median of pairs)", _get(res, "vllm_c8", "ratio"),
             _get(res, "vllm_c8", "designs", _get(res, "vllm_c8", "configured_design") or "",
                  "raw_median_pair_ratio"), None, f">= {GOALS['vllm_ratio']}",
             _met(res, "vllm_c8")],
        ]
        say(table("summary: Potluck (ONE worker; auth, limits, usage, 3 no-op policies) beside "
                  "a raw ASGI + aiohttp forwarder and the LiteLLM proxy (one worker each), "
                  "same upstream, same run",
                  ["figure", "Potluck", "raw forwarder", "LiteLLM", "goal (Potluck)", "met"],
                  summary))
        vllm_designs = _get(res, "vllm_c8", "designs") or {}
        if vllm_designs:
            say(table("vLLM tok/s through Potluck ÷ direct, by CPU-sharing design",
                      ["design", "median of pairs", "worker on CPU ms", "worker waiting ms"],
                      [[name, d["median_pair_ratio"], d["gateway_worker_cpu_ms"],
                        d["gateway_worker_runqueue_wait_ms"]]
                       for name, d in vllm_designs.items()]))
        with_goals = [k for k in ("c1", "rate200", "c32", "stream_c1", "vllm_c8")
                      if k in PHASES]
        goals_met = (all(res.get(k, {}).get("met") is True for k in with_goals)
                     if with_goals else None)
        reconciled = {"c1": 1, "rate200": 1, "c32": 1, "stream_c1": 1, "vllm_c8": 1,
                      "levers": len(LEVERS)}
        expected = sum(n for phase, n in reconciled.items() if phase in PHASES)
        usage_ok = all(u["ok"] for u in self.usage.values()) and len(self.usage) == expected
        for line in self.notes:
            say(line)
        if self.failures:
            say("failures: " + "; ".join(self.failures))
        final = {"bench": "gateway", "gateway_workers": 1, "cpu_count": os.cpu_count(),
                 "litellm_version": litellm_proxy.VERSION if self.litellm else None,
                 "ratios": _ratios(res), **res, "usage": self.usage, "goals": GOALS,
                 "goals_met": goals_met, "usage_ok": usage_ok, "notes": self.notes,
                 "failures": self.failures, "seconds": round(seconds, 1)}
        print(orjson.dumps(final).decode(), flush=True)
        return 1 if self.failures or not usage_ok else 0


def _ratios(res: dict[str, Any]) -> dict[str, Any]:
    """The headline ratios, in one place of the JSON."""
    return {
        "c32_gateway_over_raw": _get(res, "c32", "targets", "gateway", "over_raw"),
        "c32_litellm_over_raw": _get(res, "c32", "targets", "litellm", "over_raw"),
        "c32_gateway_over_litellm": _get(res, "c32", "gateway_over_litellm"),
        "c1_added_p50_ms": {k: _get(res, "c1", "targets", k, "added_p50_ms")
                            for k in ("gateway", "raw", "litellm")},
        "c1_added_p99_ms": {k: _get(res, "c1", "targets", k, "added_p99_ms")
                            for k in ("gateway", "raw", "litellm")},
        "stream_added_ttft_p50_ms": {k: _get(res, "stream_c1", k, "added_ttft_p50_ms")
                                     for k in ("gateway", "raw", "litellm")},
        "vllm_gateway_over_direct": {
            name: d.get("median_pair_ratio")
            for name, d in (_get(res, "vllm_c8", "designs") or {}).items()},
    }


def _cpu_us(runs: list[wrk.WrkResult]) -> float | None:
    """Median CPU microseconds per request of the server's process tree over ``runs``."""
    values = [x.server_cpu_us_per_request for x in runs]
    found = [v for v in values if v is not None]
    return r(median(found), 1) if found else None


def _wrk_dict(x: wrk.WrkResult) -> dict[str, Any]:
    return {"requests": x.requests, "rps": r(x.rps, 1), "p50_ms": r(x.p50_ms),
            "server_cpu_us_per_request": r(x.server_cpu_us_per_request, 1),
            "p90_ms": r(x.p90_ms), "p99_ms": r(x.p99_ms), "p999_ms": r(x.p999_ms),
            "max_ms": r(x.max_ms), "errors": x.errors, "error_kinds": x.error_detail}


def _paths_table(title: str, entries: dict[str, dict[str, Any]], fields: list[str],
                 header: list[str], first: str = "path") -> str:
    return table(title, [first, *header],
                 [[name, *(entry.get(f) for f in fields)] for name, entry in entries.items()])


def _get(res: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(res, dict):
            return None
        res = res.get(part)
    return res


def _met(res: dict[str, Any], phase: str) -> str:
    met = _get(res, phase, "met")
    return "-" if met is None else ("yes" if met else "NO")


def main() -> int:
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("run it as `make bench-gateway` (it needs `potluck services run`)")

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # so every finally: stops what it started

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    data_dir = Path(os.environ.get("POTLUCK_DATA_DIR") or ".potluck-bench").resolve()
    return Bench(data_dir).run()


if __name__ == "__main__":
    sys.exit(main())
