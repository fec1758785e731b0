# SPDX-License-Identifier: Apache-2.0
"""The extension registry: how the enterprise edition (or any plug-in) adds behaviour."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from potluck import extensions


@pytest.fixture(autouse=True)
def clean_registries():
    saved = {r.name: r.items() for r in extensions.ALL_REGISTRIES}
    for registry in extensions.ALL_REGISTRIES:
        registry.clear()
    yield
    for registry in extensions.ALL_REGISTRIES:
        registry.clear()
        for key, item in saved[registry.name]:
            registry.register(key, item)


def test_a_key_registers_once_unless_replaced():
    extensions.features.register("sso", extensions.Feature("sso", "Single sign-on"))
    with pytest.raises(ValueError, match="already registered"):
        extensions.features.register("sso", extensions.Feature("sso", "again"))
    extensions.features.register("sso", extensions.Feature("sso", "SSO v2"), replace=True)
    assert extensions.features.get("sso").title == "SSO v2"


def test_feature_available_follows_registration():
    assert not extensions.feature_available("billing")
    extensions.features.register("billing", extensions.Feature("billing", "Billing"))
    assert extensions.feature_available("billing")
    extensions.features.unregister("billing")
    assert not extensions.feature_available("billing")


def test_registry_versions_change_with_registrations():
    before = extensions.request_policies.version
    extensions.request_policies.register("p", object())
    extensions.request_policies.unregister("p")
    extensions.request_policies.unregister("p")  # absent: no change
    assert extensions.request_policies.version == before + 2


def test_refreshers_run_and_a_failing_one_does_not_stop_the_others():
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("down")

    extensions.refreshers.register("broken", broken)
    extensions.refreshers.register("keeper", lambda: calls.append("keeper"))
    extensions.run_refreshers()
    assert calls == ["keeper"]


class Meter:
    def __init__(self, name: str) -> None:
        self.name = name

    def consume(self, records: Sequence[extensions.CommittedUsageRecord]) -> None:
        pass


def test_a_usage_consumer_registers_under_its_own_valid_name():
    meter = extensions.usage_consumers.add(Meter("stripe-meter"))
    assert extensions.usage_consumers.get("stripe-meter") is meter
    with pytest.raises(ValueError, match="already registered"):
        extensions.usage_consumers.add(Meter("stripe-meter"))
    with pytest.raises(ValueError, match="registered as 'billing' but named 'credits'"):
        extensions.usage_consumers.register("billing", Meter("credits"))
    with pytest.raises(ValueError, match="not a valid consumer name"):
        extensions.usage_consumers.add(Meter("Stripe Meter"))
    with pytest.raises(TypeError, match="has no name and consume"):
        extensions.usage_consumers.register("x", object())  # type: ignore[arg-type]
    assert extensions.usage_consumers.keys() == ["stripe-meter"]


@pytest.mark.django_db
def test_the_api_lists_registered_panels_and_features(org, client_for):
    client = client_for(org, ["read"])
    assert client.get("/api/extensions").json() == {"panels": [], "features": []}
    extensions.console_panels.register("licence", extensions.ConsolePanel(
        "licence", "Licence", "/api/license", order=1))
    extensions.features.register("sso", extensions.Feature("sso", "Single sign-on"))
    body = client.get("/api/extensions").json()
    assert body["panels"][0]["key"] == "licence"
    assert body["features"] == [{"key": "sso", "title": "Single sign-on"}]


def test_community_code_never_imports_enterprise():
    """The same rule import-linter enforces, checked here so `pytest` alone catches it."""
    import ast
    from pathlib import Path

    import potluck

    root = Path(potluck.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "potluck_enterprise" for n in names):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []


def test_admin_events_reach_every_sink_and_a_failing_sink_fails_the_act():
    seen: list[extensions.AdminEvent] = []
    extensions.record_admin_event("api_key.created")  # no sink: nothing happens
    extensions.admin_event_sinks.register("trail", seen.append)
    extensions.record_admin_event("api_key.created", organization_id="o1", actor="operator",
                                  target="key:pot_x", details={"name": "k"})
    assert seen == [extensions.AdminEvent("api_key.created", "o1", "operator", "key:pot_x",
                                          {"name": "k"})]

    def broken(event: extensions.AdminEvent) -> None:
        raise RuntimeError("trail down")

    extensions.admin_event_sinks.register("broken", broken)
    with pytest.raises(RuntimeError):
        extensions.record_admin_event("member.removed")
