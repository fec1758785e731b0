# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""`make bench-compliance`: what a compliance profile costs, side by side in one run.

1. The guardrails' own CPU time on a 1 KB prompt and a 1 KB answer (in process):
   the finance profile (pattern detectors only) and the healthcare one (with Presidio's
   names and addresses), p50/p99 over many runs.
2. The gateway with and without a profile: a real gateway process (one worker) before a
   fake replica that streams a 1 KB answer in 16-character events, 2 ms apart. Requests
   alternate between the base model and its finance variant, streamed and not: the
   gateway's added time (``x-potluck-overhead-ms``) for whole answers, and the time to
   first token and to the last byte seen by the client for streams. The difference is
   the profile's price, hold-back included.
3. The audit log: the cost of appending one request's entry, and offline verification
   speed (entries/s) of an export.
4. Detector quality on the labelled set (tests/enterprise/compliance/labelled_set.jsonl).

Run under `potluck services run` with a throwaway POTLUCK_DATA_DIR (the Makefile does).
Prints a table, and last one JSON line with every figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "enterprise" / "compliance")]
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 150))
CPU_RUNS = int(os.environ.get("BENCH_CPU_RUNS", 1000))
AUDIT_ENTRIES = int(os.environ.get("BENCH_AUDIT_ENTRIES", 2000))

FILLER = ("Your account summary for this month shows regular deposits and the usual card "
          "payments. Interest was added on the last business day, and no fees were charged. ")


def kilobyte(*identifiers: str) -> str:
    text = " ".join(identifiers) + " " + FILLER * 8
    return text[:1024]


PROMPT = kilobyte("Please check card 4111 1111 1111 1111 and mail jo@example.com.")
ANSWER = kilobyte("The card 4111 1111 1111 1111 is active; we wrote to jo@example.com,",
                  "IBAN DE89 3704 0044 0532 0130 00 received it.")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(pct(values, 0.5), 3), "p99": round(pct(values, 0.99), 3),
            "mean": round(statistics.fmean(values), 3)}


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


# -- 1. guardrails CPU -------------------------------------------------------------------
def guard_cpu() -> dict[str, Any]:
    from potluck_enterprise.compliance.guard import Findings, Guard
    from potluck_enterprise.compliance.profiles import builtin_spec, compile_profile

    out = {}
    for key in ("finance", "healthcare"):
        profile = compile_profile(key, 1, builtin_spec(key))
        for direction, text in (("request", PROMPT), ("response", ANSWER)):
            guard = Guard(profile, direction)
            guard.apply(text.replace("SSN", ""), Findings())  # warm (Presidio loads once)
            times = []
            for _ in range(CPU_RUNS if key == "finance" else CPU_RUNS // 5):
                findings = Findings()
                start = time.perf_counter()
                with contextlib.suppress(Exception):  # a profile may block what it holds
                    guard.apply(text, findings)
                times.append((time.perf_counter() - start) * 1e3)
            out[f"{key}.{direction}"] = summary(times)
    return out


# -- 2. the gateway ----------------------------------------------------------------------
def gateway_overhead() -> dict[str, Any]:
    import httpx
    from fake_upstream import FakeUpstream, UpstreamThread
    from gateway_harness import running_gateway, wait_until_listed

    from potluck.accounts import services as accounts
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState
    from potluck_enterprise.compliance import services as compliance
    from potluck_enterprise.compliance.models import Variant, VariantState
    from potluck_enterprise.licensing import format
    from potluck_enterprise.licensing import services as licensing
    from potluck_enterprise.licensing.licence import format_time

    upstream = UpstreamThread(FakeUpstream()).start()
    upstream.behaviour.pieces = [ANSWER[i:i + 16] for i in range(0, len(ANSWER), 16)]
    upstream.behaviour.delay = 0.002
    private_pem, public_pem = format.generate_key_pair()
    format.ISSUER_PUBLIC_KEY = public_pem
    now = datetime.now(UTC)
    licensing.install(format.sign({
        "version": 1, "license_id": "lic-bench", "licensee": "Bench", "organization": "Bench",
        "features": ["compliance"], "seats": 10, "issued_at": format_time(now),
        "expires_at": format_time(now + timedelta(days=1)), "grace_days": 0},
        format.load_private_key(private_pem)))
    org = accounts.create_organization(f"Bench compliance {int(time.time())}")
    _, key = accounts.create_api_key(org, "bench", scopes=["inference"])
    name = f"bench-{int(time.time())}"
    base = RegisteredModel.objects.create(name=name, source=Source.HUGGINGFACE,
                                          repo_id=f"bench/{name}", context_length=4096)
    deployment = Deployment.objects.create(model=base, replicas=1)
    node = Node.objects.create(name=f"node-{name}", queue=f"node.{name}", hostname="localhost")
    Replica.objects.create(deployment=deployment, node=node, port=upstream.port,
                           state=ReplicaState.READY)
    profile = compliance.ensure_profile(org, "finance")
    Variant.objects.create(organization=org, name=f"{name}:finance", profile=profile,
                           base=base, model=base, candidate_name=f"{name}:finance@bench",
                           state=VariantState.PUBLISHED, published_at=datetime.now(UTC))
    tmp = Path(tempfile.mkdtemp(prefix="bench-compliance-"))
    (tmp / "issuer.pem").write_bytes(public_pem)
    plugins = ROOT / "tests" / "enterprise" / "plugins"
    env = {**os.environ, "POTLUCK_PLUGINS": "potluck_test_issuer_key",
           "POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE": str(tmp / "issuer.pem"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(plugins),
                                                       os.environ.get("PYTHONPATH")]))}
    results: dict[str, dict[str, list[float]]] = {}
    with running_gateway(env, tmp) as gateway:
        wait_until_listed(gateway, key, f"{name}:finance")
        headers = {"authorization": f"Bearer {key}"}
        with httpx.Client(base_url=gateway.v1, headers=headers, timeout=30) as client:
            for round_ in range(REQUESTS + 10):
                for model, label in ((name, "base"), (f"{name}:finance", "finance")):
                    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
                    answer = client.post("/chat/completions", json=body)
                    assert answer.status_code == 200, answer.text
                    overhead = float(answer.headers["x-potluck-overhead-ms"])
                    start = time.perf_counter()
                    first = None
                    with client.stream("POST", "/chat/completions",
                                       json={**body, "stream": True}) as stream:
                        for line in stream.iter_lines():
                            if first is None and '"content"' in line:
                                first = time.perf_counter()
                    end = time.perf_counter()
                    if round_ < 10:
                        continue  # warm-up
                    bucket = results.setdefault(label, {"overhead_ms": [], "ttft_ms": [],
                                                        "stream_total_ms": []})
                    bucket["overhead_ms"].append(overhead)
                    bucket["ttft_ms"].append(((first or end) - start) * 1e3)
                    bucket["stream_total_ms"].append((end - start) * 1e3)
    return {label: {metric: summary(values) for metric, values in metrics.items()}
            for label, metrics in results.items()}


# -- 3. the audit log --------------------------------------------------------------------
def audit_costs() -> dict[str, Any]:
    from potluck.accounts import services as accounts
    from potluck_enterprise.audit import services
    from potluck_enterprise.audit.verify import verify

    org = accounts.create_organization(f"Bench audit {int(time.time())}")
    data = {"request_id": "req_x", "model": "m:finance", "status": 200, "outcome": "served",
            "detections": {"request:CARD:redact": 1, "response:CARD:mask": 1},
            "prompt_sha256": "0" * 64, "answer_sha256": "1" * 64, "prompt_tokens": 250,
            "completion_tokens": 250}
    times = []
    started = time.perf_counter()
    for _ in range(AUDIT_ENTRIES):
        start = time.perf_counter()
        services.append(organization_id=org.id, kind="request", action="inference.request",
                        actor="key:k", target="m:finance", data=data)
        times.append((time.perf_counter() - start) * 1e3)
    appended = AUDIT_ENTRIES / (time.perf_counter() - started)
    key = services.chain_key(org.id)
    start = time.perf_counter()
    lines = list(services.export_lines(key))
    exported = time.perf_counter() - start
    records = [json.loads(line) for line in lines]
    start = time.perf_counter()
    report = verify(records)
    verified = time.perf_counter() - start
    assert report.ok and report.entries == AUDIT_ENTRIES, report.problems
    return {"append_ms": summary(times), "appends_per_s": round(appended),
            "export_entries_per_s": round(AUDIT_ENTRIES / exported),
            "verify_entries_per_s": round(AUDIT_ENTRIES / verified)}


def main() -> None:
    setup()
    figures: dict[str, Any] = {"guard_cpu_ms": guard_cpu()}
    print("guardrails CPU on 1 KB (ms):")
    for key, value in figures["guard_cpu_ms"].items():
        print(f"  {key:<22} p50 {value['p50']:>7.3f}  p99 {value['p99']:>7.3f}")
    figures["gateway"] = gateway_overhead()
    print(f"gateway, 1 KB prompt and answer, {REQUESTS} requests each (ms):")
    for metric in ("overhead_ms", "ttft_ms", "stream_total_ms"):
        base, fin = figures["gateway"]["base"][metric], figures["gateway"]["finance"][metric]
        print(f"  {metric:<16} base p50 {base['p50']:>8.3f} p99 {base['p99']:>8.3f}   "
              f"finance p50 {fin['p50']:>8.3f} p99 {fin['p99']:>8.3f}   "
              f"added p50 {fin['p50'] - base['p50']:>7.3f}")
    figures["audit"] = audit_costs()
    audit = figures["audit"]
    print(f"audit append: p50 {audit['append_ms']['p50']:.3f} ms, p99 "
          f"{audit['append_ms']['p99']:.3f} ms ({audit['appends_per_s']}/s, one writer); "
          f"verify {audit['verify_entries_per_s']} entries/s, export "
          f"{audit['export_entries_per_s']} entries/s")
    import labelled

    result = labelled.score()
    print(labelled.report(result))
    figures["quality"] = {"checksum_recall": round(result.recall(labelled.CHECKSUM_KINDS), 4),
                          "checksum_precision": round(result.precision(
                              labelled.CHECKSUM_KINDS), 4),
                          "names_addresses_recall": round(result.recall(labelled.NLP), 4),
                          "names_addresses_precision": round(result.precision(labelled.NLP),
                                                             4)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
