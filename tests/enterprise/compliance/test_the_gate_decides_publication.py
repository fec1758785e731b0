# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A candidate is served only under its candidate name while evaluated; a failing gate
leaves it unpublished with its failing cases on its card; a passing one publishes it
under its name (retiring the previous build), with the card the console shows."""

from __future__ import annotations

from potluck_enterprise.compliance import services
from potluck_enterprise.compliance.aliases import variant_aliases
from potluck_enterprise.compliance.models import VariantState


def names() -> set[str]:
    return {alias.name for alias in variant_aliases()}


FAILING = {"passed": False, "failed_thresholds": ["disclaimer"],
           "failing_cases": [{"id": "general-question", "checks": {"disclaimer": False},
                              "error": "", "passed": False}],
           "scores": {}, "suite": {"version": "finance-suite-1"}}
PASSING = {"passed": True, "failed_thresholds": [], "failing_cases": [],
           "scores": {"no_leak": {"rate": 1.0, "cases": 6, "threshold": 1.0}},
           "suite": {"version": "finance-suite-1"}}


def test_only_a_passing_gate_publishes(compliance_on, org, demo_base):
    candidate = services.start_build(org, "finance", demo_base.name, tune=False)
    assert candidate.state == VariantState.EVALUATING
    assert names() == {candidate.candidate_name}

    failed = services.conclude_gate(candidate, FAILING)
    assert failed.state == VariantState.FAILED
    assert "general-question" in failed.error and "disclaimer" in failed.error
    assert failed.card["failing_cases"][0]["id"] == "general-question"
    assert names() == set()  # neither the name nor the candidate is served

    first = services.conclude_gate(
        services.start_build(org, "finance", demo_base.name, tune=False), PASSING)
    second = services.conclude_gate(
        services.start_build(org, "finance", demo_base.name, tune=False), PASSING)
    first.refresh_from_db()
    assert (first.state, second.state) == (VariantState.RETIRED, VariantState.PUBLISHED)
    assert names() == {"potluck-base:finance"}
    card = services.model_card(second)
    assert card["card"]["suite"]["version"] == "finance-suite-1"
    assert card["base"] == "potluck-base" and card["profile"] == "finance"
