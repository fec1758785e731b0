# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The "compliance" feature is on exactly while the licence grants it: its stages, its
admin-event sink, its variant names and console panels come with it; when the licence
lapses they go, and a catalogue stops serving a variant at once (before its next
refresh), so no request reaches a variant without its guardrails. Nothing is deleted."""

from __future__ import annotations

from compliance_helpers import publish

from potluck import extensions
from potluck.inference.catalog import Catalog, load_snapshot
from potluck_enterprise.compliance.models import Variant
from potluck_enterprise.licensing.gating import gate


def test_switched_on_and_off_with_the_licence(licensed, clock, org, served_model):
    licensed(features=["compliance"], days=30, grace_days=0)
    assert {"compliance-guardrails", "compliance-audit"} <= set(
        extensions.request_policies.keys())
    assert extensions.admin_event_sinks.get("audit-log") is not None
    assert {"compliance-profiles", "compliance-variants", "audit-log"} <= set(
        extensions.console_panels.keys())
    publish(org, served_model("demo", 9))
    catalog = Catalog()
    catalog.replace(load_snapshot())
    assert catalog.resolve("demo:finance", str(org.id)) is not None

    clock.advance(days=31)
    gate.refresh()
    assert not extensions.feature_available("compliance")
    assert extensions.request_policies.keys() == []
    assert extensions.admin_event_sinks.keys() == []
    assert extensions.console_panels.keys() == ["licence"]
    assert catalog.resolve("demo:finance", str(org.id)) is None  # no refresh needed
    assert catalog.resolve("demo", str(org.id)) is not None
    assert Variant.objects.filter(name="demo:finance").exists()  # nothing deleted
