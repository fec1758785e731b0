# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""One build of a variant, start to finish: fine-tune (the recipe, through the ordinary
fine-tuning service and node agents), gate (``gate.evaluate`` through the gateway),
then publish or fail. ``potluck compliance build`` runs it in the operator's shell.

The gate calls the gateway with a key made for the build (scope ``inference``) and
revoked at the end; both acts are in the audit log.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.utils import timezone

from potluck.accounts import services as accounts
from potluck.accounts.models import Organization
from potluck_enterprise.compliance import gate, profiles, services
from potluck_enterprise.compliance.models import Variant, VariantState

Say = Callable[[str], None]


def run(org: Organization, profile_key: str, base_name: str, *, api_base: str,
        say: Say = print, tune: bool = True, name: str = "",
        fine_tune_timeout: float = 1800.0) -> Variant:
    """Build and, if the gate passes, publish; returns the variant (published or failed)."""
    variant = services.start_build(org, profile_key, base_name, name=name, tune=tune)
    say(f"building {variant.name}: profile {variant.profile.key} "
        f"(version {variant.profile.version}), base {variant.base.name}")
    if variant.fine_tune_job_id:
        say(f"fine-tuning: job {variant.fine_tune_job_id}")
        started = time.monotonic()
        variant = _wait_for_fine_tune(variant, say, fine_tune_timeout)
        say(f"fine-tune ended after {time.monotonic() - started:.0f} s")
        if variant.state == VariantState.FAILED:
            say(f"failed: {variant.error}")
            return variant
    return evaluate(variant, api_base=api_base, say=say)


def _wait_for_fine_tune(variant: Variant, say: Say, timeout: float) -> Variant:
    deadline = time.monotonic() + timeout
    status = ""
    while True:
        variant = services.follow_fine_tune(variant)
        job = variant.fine_tune_job
        if job is not None and job.status != status:
            status = job.status
            say(f"  job {job.id}: {status}")
        if variant.state != VariantState.FINE_TUNING:
            return variant
        if time.monotonic() > deadline:
            return services.fail_build(variant, f"the fine-tune did not finish in "
                                                f"{timeout:.0f} s")
        time.sleep(1)


def evaluate(variant: Variant, *, api_base: str, say: Say = print) -> Variant:
    """Gate an ``evaluating`` variant and conclude: publish, or fail with the card."""
    profile = profiles.compiled(variant.profile.key, variant.profile.version,
                                _spec_json(variant))
    suite = gate.suite_of(variant.profile.based_on or variant.profile.key)
    key, secret = accounts.create_api_key(variant.organization,
                                          f"compliance gate {variant.name}"[:100],
                                          scopes=["inference"])
    say(f"evaluating {variant.candidate_name}: suite {suite['version']} "
        f"({len(suite['cases'])} cases) through {api_base}")
    started = time.monotonic()
    try:
        result = gate.evaluate(gate.Target(api_base.rstrip("/"), secret,
                                           variant.candidate_name, variant.base.name),
                               profile, suite)
    except Exception as exc:
        card = {"passed": False, "failed_thresholds": ["errors"],
                "error": f"{type(exc).__name__}: {exc}"[:500]}
        return services.fail_build(variant, f"the gate could not run: {card['error']}",
                                   _card(variant, card))
    finally:
        accounts.revoke_api_key(key)
    variant = services.conclude_gate(variant, _card(variant, result))
    say(f"gate ran in {time.monotonic() - started:.0f} s")
    for check, score in result["scores"].items():
        say(f"  {check}: {_show(score)}")
    if variant.state == VariantState.PUBLISHED:
        say(f"published {variant.name}")
    else:
        say(f"not published: {variant.error}")
        for case in result["failing_cases"]:
            failed = [k for k, ok in case["checks"].items() if not ok]
            say(f"  failing case {case['id']}: {', '.join(failed) or case['error']}")
    return variant


def _spec_json(variant: Variant) -> str:
    import json

    return json.dumps(variant.profile.spec, sort_keys=True)


def _card(variant: Variant, result: dict) -> dict:
    return {**result, "name": variant.name, "profile": variant.profile.key,
            "profile_version": variant.profile.version, "base": variant.base.name,
            "adapter": variant.model.name if variant.model_id and
            variant.model_id != variant.base_id else None,
            "fine_tune_job": variant.fine_tune_job_id, "built_at": timezone.now().isoformat()}


def _show(score: dict) -> str:
    if "rate" in score:
        return f"{score['rate']:.2f} over {score['cases']} cases (needs {score['threshold']})"
    return (f"ratio {score['ratio']:.3f} (candidate {score['candidate']:.2f}, base "
            f"{score['base']:.2f}; at most {score['threshold']})")
