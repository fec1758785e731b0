# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Licensed features switch on and off at runtime, in every process, without a restart."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from celery.signals import task_prerun
from django.utils import timezone
from waiting import wait_for

from potluck import extensions
from potluck.accounts import services as accounts
from potluck_enterprise.licensing import gating, services
from potluck_enterprise.licensing.gating import gate
from potluck_enterprise.licensing.models import InstalledLicence
from potluck_enterprise.sso import feature as sso_feature

# This module doubles as a feature module whose switch fails (see the test near the end).
SWITCHES: list[str] = []


def enable() -> None:
    SWITCHES.append("enable")
    raise RuntimeError("this feature cannot start")


def disable() -> None:
    SWITCHES.append("disable")


@pytest.fixture
def sso_calls(monkeypatch) -> list[str]:
    """Records calls to the SSO feature's switch, then runs the real enable()/disable()."""
    calls: list[str] = []
    real_enable, real_disable = sso_feature.enable, sso_feature.disable

    def recording_enable() -> None:
        calls.append("enable")
        real_enable()

    def recording_disable() -> None:
        calls.append("disable")
        real_disable()

    monkeypatch.setattr(sso_feature, "enable", recording_enable)
    monkeypatch.setattr(sso_feature, "disable", recording_disable)
    return calls


def test_installing_switches_the_granted_features_on_in_this_process(licensed, sso_calls):
    assert not extensions.feature_available("sso")
    licensed(features=["sso", "billing"])
    assert extensions.feature_available("sso")
    assert extensions.feature_available("billing")
    assert not extensions.feature_available("credits")
    assert sso_calls == ["enable"]
    assert extensions.features.get("sso").details == {"license_id": "lic-test-0001",
                                                      "switchable": True}
    # billing switches its hooks (the budget stage, the pricing consumer, a refresher).
    assert extensions.features.get("billing").details["switchable"] is True
    assert extensions.request_policies.get("billing-budgets") is not None
    assert extensions.usage_consumers.get("billing.pricing") is not None
    assert gate.enabled == {"sso", "billing"}


def test_re_evaluating_an_unchanged_licence_switches_nothing_again(licensed, sso_calls):
    licensed(features=["sso"])
    gate.refresh()
    gate.refresh()
    assert sso_calls == ["enable"]


def test_a_licence_that_grants_less_switches_the_rest_off(licensed, sso_calls):
    licensed(features=["sso", "billing"])
    licensed(features=["billing"], license_id="lic-test-0002")
    assert not extensions.feature_available("sso")
    assert extensions.feature_available("billing")
    assert sso_calls == ["enable", "disable"]
    licensed(features=["sso"], license_id="lic-test-0003")
    assert extensions.request_policies.get("billing-budgets") is None
    assert extensions.usage_consumers.get("billing.pricing") is None


def test_features_stay_on_in_grace_and_go_off_after_it_keeping_the_data(
        licensed, issuer, sso_calls, clock, org):
    licensed(features=["sso"], days=365, grace_days=14)
    expires = issuer.epoch + timedelta(days=365)

    clock.set(expires + timedelta(days=13, hours=23))
    assert gate.refresh() == {"sso"}
    assert sso_calls == ["enable"]

    clock.set(expires + timedelta(days=14))
    assert gate.refresh() == frozenset()
    assert not extensions.feature_available("sso")
    assert sso_calls == ["enable", "disable"]
    assert InstalledLicence.objects.filter(active=True).count() == 1  # nothing deleted
    # The community edition keeps working, without a seat limit.
    for n in range(20):
        accounts.add_member(org, f"person{n}@acme.test", "member")


def test_a_stale_gate_re_evaluates_at_the_next_web_request(licensed, sso_calls, clock, client,
                                                          monkeypatch):
    licensed(features=["sso"], grace_days=0)
    clock.advance(days=400)
    assert extensions.feature_available("sso")  # nobody has looked since
    monkeypatch.setattr(gate, "recheck_seconds", 0.0)
    client.get("/healthz")
    assert not extensions.feature_available("sso")
    assert sso_calls == ["enable", "disable"]


def test_a_stale_gate_re_evaluates_before_a_celery_task(licensed, clock, monkeypatch):
    licensed(features=["sso"], grace_days=0)
    clock.advance(days=400)
    monkeypatch.setattr(gate, "recheck_seconds", 0.0)
    task_prerun.send(sender=None, task_id="t-1", task=None, args=(), kwargs={})
    assert not extensions.feature_available("sso")


def test_a_fresh_gate_costs_no_query(licensed, django_assert_num_queries):
    licensed(features=["sso"])
    with django_assert_num_queries(0):
        for _ in range(100):
            gate.maybe_refresh()
    assert extensions.feature_available("sso")


def test_an_unreachable_licence_check_keeps_the_features_as_they_were(
        licensed, monkeypatch, django_db_blocker):
    licensed(features=["sso"])
    monkeypatch.setattr(gate, "recheck_seconds", 0.0)
    with django_db_blocker.block():  # every database access now raises
        gate.maybe_refresh()
    assert extensions.feature_available("sso")


def test_a_feature_whose_switch_fails_stays_off_and_the_others_go_on(licensed, monkeypatch):
    SWITCHES.clear()
    monkeypatch.setitem(gating.FEATURE_MODULES, "billing", __name__)
    licensed(features=["sso", "billing"])
    assert extensions.feature_available("sso")
    assert not extensions.feature_available("billing")
    assert SWITCHES == ["enable"]
    gate.refresh()  # tried again at the next evaluation
    assert SWITCHES == ["enable", "enable"]


CHILD = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")
import django
django.setup()
from pathlib import Path
from potluck_enterprise.licensing import format, services
format.ISSUER_PUBLIC_KEY = Path(sys.argv[1]).read_bytes()  # the test's throwaway key
print(services.install(Path(sys.argv[2]).read_text()).license_id)
"""


def test_a_licence_installed_by_another_process_switches_features_on_here(
        issuer, live_env, tmp_path, client, sso_calls):
    now = timezone.now()
    (tmp_path / "public.pem").write_bytes(issuer.public_pem)
    (tmp_path / "licence.txt").write_text(
        issuer.licence(features=["sso"], issued_at=now - timedelta(days=1)))
    client.get("/healthz")
    assert not extensions.feature_available("sso")

    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "public.pem"),
                           str(tmp_path / "licence.txt")], env=live_env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "lic-test-0001"

    # Within RECHECK_SECONDS, the next request here sees it: no restart, no signal between us.
    wait_for(lambda: client.get("/healthz") and extensions.feature_available("sso"),
             gating.RECHECK_SECONDS * 4, "the gate to pick up the other process's licence")
    assert sso_calls == ["enable"]
    assert services.current().license_id == "lic-test-0001"
