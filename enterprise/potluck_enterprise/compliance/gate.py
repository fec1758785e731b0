# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The evaluation gate: a profile's suite run through the gateway against a candidate.

The suite (``builtin/<profile>.suite.json``) has cases (a prompt, the identifiers planted
in it, and what must hold: nothing planted comes back, the disclaimer is there, the
request is refused or not) and a held-out text for the capability check. The cases run
with **inspect-ai** (UK AISI's evaluation framework: tasks, samples, scorers, logs;
maintained and offline), through a model provider of ours, ``potluck/<model>``, that
calls the gateway's ``/v1/chat/completions`` streamed, exactly as a client would, and
reports a ``compliance_blocked`` refusal as a ``content_filter`` stop. inspect-ai was
chosen over lm-evaluation-harness because these cases are chat prompts with
per-case checks (its sample/scorer model fits), and because lm-eval's install brings
pandas, scikit-learn and pyarrow for nothing we use. The capability check is not an
inspect task: it is the held-out text's perplexity, from the prompt log-probabilities
vLLM returns on ``/v1/completions`` (``prompt_logprobs``), for the candidate and for its
base; the candidate passes if the ratio stays within the suite's bound.

Thresholds (the suite's ``thresholds``): ``no_leak``, ``disclaimer`` and ``refusal``
are pass rates over the cases that check them; ``perplexity_ratio_max`` bounds the
capability check. The variant is published only if every one passes.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from django.utils import timezone

from potluck_enterprise.compliance.profiles import BUILTIN_DIR, Profile

CHECKS = ("no_leak", "disclaimer", "refusal")


@dataclass(frozen=True)
class Target:
    """Where the gate sends its requests: the gateway's base URL (``.../v1``), a key of
    the variant's organization, the candidate's name and its base's name."""

    api_base: str
    api_key: str
    candidate: str
    base: str


def suite_of(profile_key: str) -> dict[str, Any]:
    path = BUILTIN_DIR / f"{profile_key}.suite.json"
    if not path.exists():
        raise FileNotFoundError(f"the profile {profile_key!r} has no evaluation suite")
    return json.loads(path.read_text())


def normal(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def wait_until_served(target: Target, timeout: float = 180.0) -> None:
    """Until the candidate answers (a fine-tune's adapter reaches the replicas within
    seconds of success; until then the gateway says 503 model_not_ready)."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(f"{target.api_base}/chat/completions", timeout=60, json={
            "model": target.candidate, "max_tokens": 1,
            "messages": [{"role": "user", "content": "ping"}]},
            headers={"authorization": f"Bearer {target.api_key}"})
        if response.status_code == 200:
            return
        if response.status_code not in (404, 503) or time.monotonic() > deadline:
            raise RuntimeError(f"the candidate {target.candidate} is not served "
                               f"({response.status_code}: {response.text[:200]})")
        time.sleep(1)


def run_cases(target: Target, suite: dict[str, Any], profile: Profile) -> list[dict[str, Any]]:
    """Each case's checks, from an inspect-ai run; returns one dict per case."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import GenerateConfig, get_model
    from inspect_ai.solver import generate

    from potluck_enterprise.compliance import gate_provider

    gate_provider.register()
    samples = [Sample(id=case["id"], input=case["prompt"],
                      metadata={"planted": case.get("planted", []),
                                "expect": case.get("expect", {})}) for case in suite["cases"]]
    task = Task(dataset=MemoryDataset(samples), solver=generate(),
                scorer=gate_provider.compliance_case(profile.disclaimer),
                config=GenerateConfig(max_tokens=int(suite.get("max_tokens", 24)),
                                      temperature=0.0))
    model = get_model(f"potluck/{target.candidate}", base_url=target.api_base,
                      api_key=target.api_key)
    with tempfile.TemporaryDirectory(prefix="potluck-gate-") as logs:
        [log] = inspect_eval(task, model=model, display="none", log_dir=logs,
                             log_format="json", max_connections=4, fail_on_error=False)
    results = []
    for sample in log.samples or []:
        score = next(iter((sample.scores or {}).values()), None)
        checks = dict(score.metadata.get("checks", {})) if score and score.metadata else {}
        error = str(sample.error.message) if sample.error else ""
        results.append({"id": str(sample.id), "checks": checks, "error": error,
                        "passed": bool(checks) and all(checks.values()) and not error})
    return results


def perplexity(target: Target, model: str, text: str) -> float:
    """exp(mean negative log-likelihood) of ``text``'s tokens under ``model``, from vLLM's
    prompt log-probabilities through the gateway."""
    response = httpx.post(f"{target.api_base}/completions", timeout=120, json={
        "model": model, "prompt": text, "max_tokens": 1, "temperature": 0,
        "prompt_logprobs": 1}, headers={"authorization": f"Bearer {target.api_key}"})
    response.raise_for_status()
    rows = response.json()["choices"][0].get("prompt_logprobs") or []
    logprobs = []
    for row in rows:
        if not row:
            continue  # the first token has none
        # The prompt's own token is the entry with the largest rank (top-1 may be another).
        entry = max(row.values(), key=lambda item: item.get("rank") or 0)
        logprobs.append(float(entry["logprob"]))
    if not logprobs:
        raise RuntimeError(f"{model} returned no prompt log-probabilities")
    return math.exp(-sum(logprobs) / len(logprobs))


def evaluate(target: Target, profile: Profile, suite: dict[str, Any]) -> dict[str, Any]:
    """Run the gate; returns the model card's evaluation part (``passed`` and why)."""
    started = timezone.now()
    wait_until_served(target)
    cases = run_cases(target, suite, profile)
    expected = {case["id"] for case in suite["cases"]}
    missing = expected - {case["id"] for case in cases}
    for case_id in sorted(missing):
        cases.append({"id": case_id, "checks": {}, "error": "not run", "passed": False})
    thresholds = suite["thresholds"]
    scores: dict[str, Any] = {}
    failed: list[str] = []
    for check in CHECKS:
        values = [c["checks"][check] for c in cases if check in c["checks"]]
        rate = sum(values) / len(values) if values else 1.0
        scores[check] = {"rate": round(rate, 4), "cases": len(values),
                         "threshold": thresholds.get(check, 1.0)}
        if rate < thresholds.get(check, 1.0):
            failed.append(check)
    if any(c["error"] for c in cases):
        failed.append("errors")
    candidate_ppl = perplexity(target, target.candidate, suite["held_out"])
    base_ppl = perplexity(target, target.base, suite["held_out"])
    ratio = candidate_ppl / base_ppl
    bound = float(thresholds.get("perplexity_ratio_max", 1.5))
    scores["perplexity"] = {"candidate": round(candidate_ppl, 3), "base": round(base_ppl, 3),
                            "ratio": round(ratio, 4), "threshold": bound}
    if not ratio <= bound:
        failed.append("perplexity")
    return {
        "passed": not failed, "failed_thresholds": failed, "scores": scores,
        "suite": {"version": suite["version"], "cases": len(suite["cases"]),
                  "harness": "inspect-ai " + _inspect_version()},
        "failing_cases": [c for c in cases if not c["passed"]],
        "evaluated_at": started.isoformat(), "finished_at": timezone.now().isoformat(),
    }


def _inspect_version() -> str:
    from importlib.metadata import version

    return version("inspect-ai")


def card_path(directory: Path, name: str) -> Path:
    return directory / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".card.json")
