# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""bench/billing: what the budget check adds to the gateway, and 10,000 priced requests.

Run with ``make bench-billing`` (embedded PostgreSQL and Redis in a throwaway data dir).
One gunicorn worker serves a public model routed to a fake replica (aiohttp, its own
process; it answers 7 prompt and 3 completion tokens). Side by side in one run:

1. **Added latency, billing off vs on.** 2,000 sequential chat completions per round
   with ``max_tokens``, rounds alternating: without a licence (no budget stage), then
   licensed for ``billing`` with a hard daily and monthly budget on every key and the
   organization (so the stage checks four limits and reserves on every request). The
   figure is the gateway's own ``x-potluck-overhead-ms`` (what it added to the upstream
   time); reported p50/p99 per round and the p50 difference (goal: <= 0.2 ms).
2. **10,000 requests** over two organizations and four keys at concurrency 32 with
   billing on; then usage is rolled up and priced, and the bench checks that the sum of
   the priced lines equals usage x prices exactly (exact fractions), and reports the
   rates.

The licence is signed by a throwaway issuer key, trusted through the test plug-in
``potluck_test_issuer_key`` (as the tests do); nothing here is a production path.
Knobs: ``BENCH_BILLING_ROUNDS`` (2), ``BENCH_BILLING_SEQUENTIAL`` (2000),
``BENCH_BILLING_REQUESTS`` (10000), ``BENCH_BILLING_CONCURRENCY`` (32).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "bench" / "gateway"), str(ROOT / "tests" / "enterprise" / "plugins")]

import procs  # noqa: E402  (bench/gateway: process groups, ports)

ROUNDS = int(os.environ.get("BENCH_BILLING_ROUNDS", "2"))
SEQUENTIAL = int(os.environ.get("BENCH_BILLING_SEQUENTIAL", "2000"))
REQUESTS = int(os.environ.get("BENCH_BILLING_REQUESTS", "10000"))
CONCURRENCY = int(os.environ.get("BENCH_BILLING_CONCURRENCY", "32"))
MODEL = "bench-billing"
IN, OUT, FEE = Fraction("0.28"), Fraction("0.42"), Fraction("0.0001")

UPSTREAM = r'''
import sys
from aiohttp import web
BODY = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "a b c"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
async def answer(request):
    await request.read()
    return web.json_response(BODY)
app = web.Application()
app.router.add_post("/v1/chat/completions", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''


def say(text: str) -> None:
    print(text, flush=True)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")
    import django

    django.setup()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sequential(url: str, key: str, n: int) -> list[float]:
    import aiohttp

    overheads = []
    body = {"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            async with http.post(url + "/v1/chat/completions", json=body,
                                 headers={"authorization": f"Bearer {key}"}) as r:
                await r.read()
                assert r.status == 200, r.status
                overheads.append(float(r.headers["x-potluck-overhead-ms"]))
    return overheads


async def concurrent(url: str, keys: list[str], n: int, c: int) -> tuple[list[int], float]:
    import aiohttp

    statuses: list[int] = []
    body = {"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}
    counter = iter(range(n))
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as http:
        async def worker() -> None:
            for i in counter:
                async with http.post(url + "/v1/chat/completions", json=body, headers={
                        "authorization": f"Bearer {keys[i % len(keys)]}"}) as r:
                    await r.read()
                    statuses.append(r.status)

        await asyncio.gather(*(worker() for _ in range(c)))
    return statuses, time.perf_counter() - started


def main() -> int:
    from django.core.management import call_command

    setup_django()
    call_command("migrate", interactive=False, verbosity=0)
    from potluck.accounts import services as accounts
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState
    from potluck.usage import rollup
    from potluck.usage.consumers import Outcome, feed
    from potluck.usage.models import UsageRecord
    from potluck_enterprise.billing import budgets, pricebook
    from potluck_enterprise.billing.models import PricedLine
    from potluck_enterprise.billing.pricing import PricingConsumer
    from potluck_enterprise.licensing import format as licence_format
    from potluck_enterprise.licensing import services as licensing
    from potluck_enterprise.licensing.licence import format_time

    run_dir = Path(os.environ.get("POTLUCK_DATA_DIR", ".potluck-bench-billing")) / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    private, public = licence_format.generate_key_pair()
    (run_dir / "issuer.pem").write_bytes(public)
    licence_format.ISSUER_PUBLIC_KEY = public
    upstream_port = procs.free_port()
    upstream = procs.spawn([sys.executable, "-c", UPSTREAM, str(upstream_port)],
                           run_dir / "upstream.log")
    model = RegisteredModel.objects.create(name=MODEL, source=Source.HUGGINGFACE,
                                           repo_id="bench/billing", context_length=512)
    node = Node.objects.create(name="bench-billing", queue="node.bench-billing",
                               hostname="localhost")
    Replica.objects.create(deployment=Deployment.objects.create(model=model, replicas=1),
                           node=node, port=upstream_port, state=ReplicaState.READY)
    pricebook.create_version({"effective_from": "2020-01-01T00:00:00Z", "models": {
        MODEL: {"input": "0.28", "output": "0.42", "request_fee": "0.0001"}}})
    orgs = [accounts.create_organization(f"Bench {n}") for n in (1, 2)]
    keys = []
    for org in orgs:
        budgets.save_budget(org, {"period": "day", "hard_limit": "1000000"})
        budgets.save_budget(org, {"period": "month", "hard_limit": "1000000"})
        for n in (1, 2):
            row, secret = accounts.create_api_key(org, f"k{n}", scopes=["inference"])
            budgets.save_budget(org, {"period": "day", "api_key": row,
                                      "hard_limit": "1000000"})
            budgets.save_budget(org, {"period": "month", "api_key": row,
                                      "hard_limit": "1000000"})
            keys.append(secret)
    port = procs.free_port()
    env = {**os.environ, "POTLUCK_BIND": f"127.0.0.1:{port}", "POTLUCK_WEB_WORKERS": "1",
           "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "prometheus"),
           "POTLUCK_PLUGINS": "potluck_test_issuer_key",
           "POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE": str(run_dir / "issuer.pem"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "enterprise" / "plugins"),
                                          os.environ.get("PYTHONPATH", "")])}
    gateway = procs.spawn([sys.executable, "-m", "gunicorn", "-c",
                           "python:potluck.gunicorn_conf", "potluck.asgi:application"],
                          run_dir / "gateway.log", env)
    url = f"http://127.0.0.1:{port}"
    results: dict[str, object] = {}
    try:
        procs.wait_until(lambda: _healthy(url), 90, "gateway", gateway, run_dir / "gateway.log")
        time.sleep(2)  # the catalogue's first refresh
        licence = licence_format.sign({
            "version": 1, "license_id": "bench", "licensee": "bench", "organization": "bench",
            "features": ["billing"], "seats": 100,
            "issued_at": format_time(datetime.now(UTC) - timedelta(minutes=1)),
            "expires_at": format_time(datetime.now(UTC) + timedelta(days=1)),
            "grace_days": 0}, licence_format.load_private_key(private))
        rounds = []
        for r in range(ROUNDS):
            for mode in ("off", "on"):
                if mode == "on":
                    licensing.install(licence)
                else:
                    _remove_licence()
                time.sleep(5)  # every process re-reads the licence within 3 s
                asyncio.run(sequential(url, keys[0], 200))  # warm-up
                values = asyncio.run(sequential(url, keys[0], SEQUENTIAL))
                rounds.append({"round": r, "billing": mode, "p50_ms": percentile(values, 0.5),
                               "p99_ms": percentile(values, 0.99)})
                say(f"round {r} billing {mode:>3}: overhead p50 {rounds[-1]['p50_ms']:.3f} ms, "
                    f"p99 {rounds[-1]['p99_ms']:.3f} ms")
        off = statistics.median(x["p50_ms"] for x in rounds if x["billing"] == "off")
        on = statistics.median(x["p50_ms"] for x in rounds if x["billing"] == "on")
        results["overhead"] = {"rounds": rounds, "p50_off_ms": off, "p50_on_ms": on,
                               "added_p50_ms": on - off, "goal_ms": 0.2,
                               "met": on - off <= 0.2}
        say(f"budget check adds {on - off:.3f} ms p50 (goal <= 0.2 ms)")

        before = set(UsageRecord.objects.values_list("request_id", flat=True))
        statuses, seconds = asyncio.run(concurrent(url, keys, REQUESTS, CONCURRENCY))
        say(f"{REQUESTS} requests in {seconds:.1f} s ({REQUESTS / seconds:.0f} req/s), "
            f"statuses {sorted(set(statuses))}")
        started = time.perf_counter()
        deadline = time.monotonic() + 300
        while UsageRecord.objects.exclude(request_id__in=before).count() < REQUESTS:
            rollup.roll_up("bench-billing", 500)
            if time.monotonic() > deadline:
                raise SystemExit("usage never arrived")
        rolled = time.perf_counter() - started
        started = time.perf_counter()
        while feed(PricingConsumer(), budget_s=30).outcome == Outcome.CONSUMED:
            pass
        priced_s = time.perf_counter() - started
        expected = Fraction(0)
        for r in UsageRecord.objects.values("prompt_tokens", "completion_tokens", "status"):
            expected += (r["prompt_tokens"] * IN + r["completion_tokens"] * OUT) / 10**6
            expected += FEE if r["status"] < 400 else 0
        total = sum((x for x in PricedLine.objects.values_list("amount", flat=True)),
                    Decimal(0))
        exact = Fraction(total) == expected
        results["ten_thousand"] = {
            "requests": REQUESTS, "concurrency": CONCURRENCY, "seconds": round(seconds, 2),
            "requests_per_second": round(REQUESTS / seconds, 1),
            "ok_200": statuses.count(200), "rollup_seconds": round(rolled, 2),
            "pricing_seconds": round(priced_s, 2),
            "records_priced_per_second": round(UsageRecord.objects.count() / priced_s, 1),
            "ledger_total": str(total), "ledger_equals_usage_x_prices": exact}
        say(f"priced {UsageRecord.objects.count()} records in {priced_s:.1f} s; ledger "
            f"{total} == usage x prices: {exact}")
    finally:
        procs.stop(gateway)
        procs.stop(upstream)
    print(json.dumps(results))
    return 0 if results.get("ten_thousand", {}).get("ledger_equals_usage_x_prices") else 1


def _remove_licence() -> None:
    from potluck_enterprise.licensing.models import InstalledLicence

    InstalledLicence.objects.all().delete()


def _healthy(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
        return response.status == 200


if __name__ == "__main__":
    sys.exit(main())
