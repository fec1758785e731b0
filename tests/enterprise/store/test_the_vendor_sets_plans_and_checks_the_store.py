# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The vendor's side of the store: plans set from a JSON document (checked, all or
nothing), mirrored as Stripe products and prices once, re-priced without touching what
subscriptions pay; ``potluck store check`` and ``plans``; the store's commands say when the
store is off."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner
from store_helpers import PLANS

from potluck.cli.main import cli
from potluck.errors import InvalidInput
from potluck_enterprise.store import plans
from potluck_enterprise.store.models import Plan, PlanPrice


def potluck(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_plans_are_set_synced_once_and_repriced(store):
    assert plans.sync_stripe() == 0  # the fixture synced them: nothing twice
    assert len(store.fake.prices) == 6 and len(store.fake.products) == 2
    old = PlanPrice.objects.get(plan="team", seats=10, term="month", active=True)

    repriced = copy.deepcopy(PLANS)
    repriced["plans"][0]["prices"][0]["month"] = 10900  # 10 seats a month: 109.00
    del repriced["plans"][1]  # Business: no longer sold
    plans.set_plans(repriced)
    assert plans.sync_stripe() == 1
    new = PlanPrice.objects.get(plan="team", seats=10, term="month", active=True)
    assert new.pk != old.pk and new.amount == 10900 and new.stripe_price_id
    old.refresh_from_db()
    assert old.active is False and old.stripe_price_id  # still maps its subscriptions
    assert store.fake.prices[new.stripe_price_id]["unit_amount"] == 10900
    assert list(Plan.objects.filter(active=True).values_list("key", flat=True)) == ["team"]
    assert plans.document()["plans"][0]["prices"][0] == {"seats": 10, "month": 10900,
                                                          "year": 99000}


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(currency="JPY"), "the store sells in currencies with cents"),
    (lambda d: d["plans"][0].update(features=["sso", "teleport"]), "features, a list"),
    (lambda d: d["plans"][0]["prices"][0].update(month=0), "from 1 to"),
    (lambda d: d["plans"][0]["prices"].append({"seats": 10, "month": 1}), "priced twice"),
    (lambda d: d["plans"][1].update(key="team"), "two plans have the same key"),
    (lambda d: d["plans"][0].update(trial=[14]), "trial is"),
])
def test_a_bad_plans_document_changes_nothing(store, change, message):
    document = copy.deepcopy(PLANS)
    change(document)
    before = list(PlanPrice.objects.values_list("pk", "active"))
    with pytest.raises(InvalidInput, match=message):
        plans.set_plans(document)
    assert list(PlanPrice.objects.values_list("pk", "active")) == before


def test_the_store_commands(store, tmp_path):
    checked = potluck("store", "check")
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines() == [
        f"issuer key: {store.key_file} matches the issuer public key that Potluck ships",
        "stripe: API key set, webhook secret set",
        "plans: 2 on sale, 6 prices at Stripe"]
    shown = json.loads(potluck("store", "plans", "show").stdout)
    assert shown == plans.document() and [p["key"] for p in shown["plans"]] == ["team",
                                                                                  "business"]
    path = tmp_path / "plans.json"
    path.write_text(json.dumps({"currency": "USD", "plans": [PLANS["plans"][0]]}))
    assert potluck("store", "plans", "set", str(path), "--no-stripe").stdout == (
        "plans on sale: team\n")


def test_the_store_commands_say_when_the_store_is_off(db, settings):
    settings.STORE_ISSUER_KEY_FILE = ""
    result = CliRunner().invoke(cli, ["store", "check"])
    assert result.exit_code == 1
    assert result.output == ("error: the licence store is off on this installation: set "
                             "POTLUCK_STORE_ISSUER_KEY_FILE to the issuer's private key file\n")
