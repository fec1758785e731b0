# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Budgets enforced in a real gateway process (gunicorn + uvicorn worker, licensed for
billing) in front of a fake replica: many requests over two organizations and four keys
with real hard limits; refusals in OpenAI's shape naming the budget and its reset; a
request whose max_tokens alone would pass the limit refused up front; the spend past a
hard limit within the stated bound; and the priced lines summing exactly to usage x
prices."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import httpx
import pytest
from billing_helpers import price_all
from fake_upstream import FakeUpstream, UpstreamThread
from gateway_harness import running_gateway, wait_until_listed
from waiting import wait_for

from potluck.accounts import services as accounts
from potluck.usage import rollup
from potluck.usage.models import UsageRecord
from potluck_enterprise.billing import budgets, pricebook
from potluck_enterprise.billing.models import PricedLine

pytestmark = pytest.mark.slow

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins"
MODEL = "gw-model"
IN, OUT, FEE = Fraction(1000), Fraction(2000), Fraction("0.001")  # per 1M, per request
# The fake replica answers 7 prompt tokens and 3 completion tokens.
PROMPT_COST = 7 * IN / 10**6 + FEE
CONCURRENCY = 8


@pytest.fixture
def upstream():
    thread = UpstreamThread(FakeUpstream())
    yield thread.start()
    thread.stop()


@pytest.fixture
def stack(live_env, tmp_path, issuer, licensed, upstream):
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState

    licensed(features=["billing"])
    pricebook.create_version({"effective_from": "2020-01-01T00:00:00Z", "models": {
        MODEL: {"input": "1000", "output": "2000", "request_fee": "0.001"}}})
    model = RegisteredModel.objects.create(name=MODEL, source=Source.HUGGINGFACE,
                                           repo_id="t/gw", context_length=512)
    deployment = Deployment.objects.create(model=model, replicas=1)
    node = Node.objects.create(name="node-gw", queue="node.gw", hostname="localhost")
    Replica.objects.create(deployment=deployment, node=node, port=upstream.port,
                           state=ReplicaState.READY)
    public = tmp_path / "issuer.pem"
    public.write_bytes(issuer.public_pem)
    env = {**live_env, "POTLUCK_PLUGINS": "potluck_test_issuer_key",
           "POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE": str(public),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGIN_DIR),
                                                       live_env.get("PYTHONPATH")]))}
    with running_gateway(env, tmp_path) as gateway:
        yield gateway


def ask(gateway, key: str, **body) -> httpx.Response:
    return httpx.post(gateway.v1 + "/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                            **body})


def wait_for_budgets(gateway, org) -> None:
    """The gateway loads budgets on its next refresh: a probe key with a tiny hard limit
    is refused up front once it has."""
    probe_key, probe = accounts.create_api_key(org, "probe", scopes=["inference"])
    budgets.save_budget(org, {"period": "day", "api_key": probe_key, "hard_limit": "0.000001"})
    wait_for(lambda: ask(gateway, probe, max_tokens=50).status_code == 429, 30,
             "the gateway to load the budgets")


def drain_usage(answers: list[httpx.Response]) -> None:
    """Roll the usage stream up until every answer's request has its record."""
    ids = {a.headers["x-request-id"] for a in answers}

    def recorded() -> bool:
        rollup.roll_up("billing-test", 500)
        return UsageRecord.objects.filter(request_id__in=ids).count() == len(ids)

    wait_for(recorded, 60, f"{len(ids)} usage records")


def test_many_requests_two_orgs_four_keys_with_hard_limits(stack, transactional_db):
    gateway = stack
    acme = accounts.create_organization("Acme")
    globex = accounts.create_organization("Globex")
    keys = {}
    for org in (acme, globex):
        for n in (1, 2):
            row, secret = accounts.create_api_key(org, f"{org.slug}-{n}", scopes=["inference"])
            keys[secret] = row
    secrets = list(keys)
    limited = secrets[3]  # globex-2: a daily hard limit of 0.1 (about 7 requests)
    budgets.save_budget(keys[limited].organization, {
        "period": "day", "api_key": keys[limited], "hard_limit": "0.1"})
    # Acme as a whole: a monthly limit that its traffic stays under.
    budgets.save_budget(acme, {"period": "month", "hard_limit": "100"})
    wait_until_listed(gateway, secrets[0], MODEL)
    wait_for_budgets(gateway, globex)

    def one(i: int) -> tuple[str, httpx.Response]:
        key = secrets[i % 4]
        stream = i % 5 == 0
        return key, ask(gateway, key, max_tokens=3, stream=stream)

    with ThreadPoolExecutor(CONCURRENCY * 4) as pool:
        answers = list(pool.map(one, range(240)))
    refused = [r for k, r in answers if r.status_code == 429]
    assert refused and all(k == limited for k, r in answers if r.status_code == 429)
    assert all(r.status_code == 200 for k, r in answers if k != limited)
    error = refused[0].json()["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    assert "the daily budget of API key 'globex-2'" in error["message"]
    assert "resets at" in error["message"] and int(refused[0].headers["retry-after"]) > 0

    drain_usage([r for _, r in answers])
    price_all()
    # The sum of the priced lines is exactly usage x prices.
    expected = Fraction(0)
    for r in UsageRecord.objects.all():
        expected += (r.prompt_tokens * IN + r.completion_tokens * OUT) / 10**6
        if r.status < 400:
            expected += FEE
    total = sum((line.amount for line in PricedLine.objects.all()), Decimal(0))
    assert Fraction(total) == expected
    # Spend past the hard limit stays within the bound (one process; every request gave
    # max_tokens): the prompt cost of the requests in flight.
    spent = Fraction(sum((line.amount for line in PricedLine.objects.filter(
        api_key_id=keys[limited].pk)), Decimal(0)))
    served = sum(1 for k, r in answers if k == limited and r.status_code == 200)
    assert served >= 1
    assert spent <= Fraction("0.1") + CONCURRENCY * 4 * PROMPT_COST
    print(f"limited key: {served} served, {len(refused)} refused, spent {float(spent):.4f} "
          f"of 0.1 (bound {float(Fraction('0.1') + CONCURRENCY * 4 * PROMPT_COST):.4f})")


def test_max_tokens_alone_over_the_remaining_budget_is_refused_up_front(stack,
                                                                       transactional_db):
    gateway = stack
    org = accounts.create_organization("Acme")
    row, key = accounts.create_api_key(org, "small", scopes=["inference"])
    budgets.save_budget(org, {"period": "month", "api_key": row, "hard_limit": "0.05"})
    wait_until_listed(gateway, key, MODEL)
    wait_for_budgets(gateway, org)
    # 100 output tokens would cost 0.2 alone: refused without reaching the replica.
    answer = ask(gateway, key, max_tokens=100)
    assert answer.status_code == 429
    error = answer.json()["error"]
    assert error["code"] == "budget_exceeded" and error["param"] == "max_tokens"
    assert "the monthly budget of API key 'small'" in error["message"]
    # A small max_tokens fits and is served.
    served = ask(gateway, key, max_tokens=3)
    assert served.status_code == 200
    drain_usage([answer, served])
    price_all()
    assert PricedLine.objects.filter(usage_id=served.headers["x-request-id"]).exists()
    refused_id = answer.headers["x-request-id"]
    assert not PricedLine.objects.filter(usage_id=refused_id).exists()
