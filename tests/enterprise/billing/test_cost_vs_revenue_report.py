# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Cost vs revenue: replica READY time (recorded by the community trigger) x versioned
node-type costs, against served tokens at list and billed prices; DeepSeek's published
day reproduced ($87,072 of GPU cost); the report through the API and
`potluck billing report --month` (table, CSV, JSON)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from billing_helpers import price_all, usage_record
from plugin_env import plugin_env

from potluck.accounts import services as accounts
from potluck.nodes.models import Node
from potluck.registry.models import RegisteredModel, Source
from potluck.serving.history import intervals
from potluck.serving.models import Deployment, Replica, ReplicaState, ReplicaStateChange
from potluck.usage import services as usage
from potluck_enterprise.billing import costs, pricebook, report

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins"
DAY = date(2026, 11, 3)
START = datetime(2026, 11, 3, tzinfo=UTC)


def serve(name: str, node: Node, ready_hours: list[tuple[float, float]], gpus: int = 8
          ) -> None:
    """A replica READY over each (from, to) hour range of DAY, written through the real
    trigger, then its history moved to those times."""
    model = RegisteredModel.objects.get_or_create(
        name=name, defaults={"source": Source.HUGGINGFACE, "repo_id": f"t/{name}"})[0]
    deployment = Deployment.objects.filter(model=model).first() or \
        Deployment.objects.create(model=model, replicas=1)
    replica = Replica.objects.create(deployment=deployment, node=node, port=None,
                                     gpu_ids=list(range(gpus)))
    ReplicaStateChange.objects.filter(replica_id=replica.pk).delete()
    rows = []
    for begin, end in ready_hours:
        rows += [ReplicaStateChange(replica_id=replica.pk, deployment_id=deployment.pk,
                                    node_id=node.pk, state=ReplicaState.READY, gpus=gpus,
                                    at=START + timedelta(hours=begin)),
                 ReplicaStateChange(replica_id=replica.pk, deployment_id=deployment.pk,
                                    node_id=node.pk, state=ReplicaState.STOPPED, gpus=gpus,
                                    at=START + timedelta(hours=end))]
    ReplicaStateChange.objects.bulk_create(rows)


def test_the_trigger_records_every_state_change(db):
    node = Node.objects.create(name="n1", queue="node.n1", hostname="h")
    model = RegisteredModel.objects.create(name="m", source=Source.HUGGINGFACE, repo_id="t/m")
    deployment = Deployment.objects.create(model=model, replicas=1)
    replica = Replica.objects.create(deployment=deployment, node=node, gpu_ids=[0, 1])
    Replica.objects.filter(pk=replica.pk).update(state=ReplicaState.READY)  # a bulk update
    Replica.objects.filter(pk=replica.pk).update(reason="same state: no row")
    replica.refresh_from_db()
    replica.state = ReplicaState.DRAINING
    replica.save()
    history = list(ReplicaStateChange.objects.filter(replica_id=replica.pk)
                   .values_list("state", "gpus"))
    assert history == [("starting", 2), ("ready", 2), ("draining", 2)]
    ready = intervals(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(1))
    assert len(ready) == 1 and ready[0].model == "m" and ready[0].gpus == 2


def test_deepseeks_day_costs_87072_dollars(db, settings):
    settings.BILLING_TIME_ZONE = "UTC"
    node = Node.objects.create(name="h800-1", queue="node.h800-1", hostname="h",
                               gpus=[{"index": 0, "name": "NVIDIA H800"}])
    assert costs.derived_type(node) == "gpu:NVIDIA H800"
    costs.set_cost("gpu:NVIDIA H800", "2", effective_from="2026-01-01T00:00:00Z")
    # 226.75 nodes of 8 GPUs for 24 hours: 226 all day, and one for 18 hours.
    for _ in range(226):
        serve("deepseek-r1", node, [(0, 24)])
    serve("deepseek-r1", node, [(0, 6), (12, 24)])
    built = report.build(DAY, DAY + timedelta(days=1))
    assert built.total.cost == Decimal("87072")
    assert built.total.gpu_hours == Decimal("43536")  # 226.75 x 8 x 24


def test_a_cost_change_mid_interval_splits_it(db):
    node = Node.objects.create(name="cpu-1", queue="node.cpu-1", hostname="h")
    costs.set_cost("cpu", "0.50", per="replica", effective_from="2026-01-01T00:00:00Z")
    costs.set_cost("cpu", "0.80", per="replica", effective_from="2026-11-03T12:00:00Z")
    serve("small", node, [(6, 18)], gpus=0)
    built = report.build(DAY, DAY + timedelta(days=1))
    assert built.total.cost == Decimal("0.50") * 6 + Decimal("0.80") * 6


def test_the_month_report_in_the_api_and_the_cli(transactional_db, billing_on, live_env,
                                                 user_client, settings, issuer, tmp_path):
    settings.BILLING_TIME_ZONE = "UTC"
    public = tmp_path / "issuer.pem"
    public.write_bytes(issuer.public_pem)
    env = {**live_env, "POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE": str(public),
           "POTLUCK_BILLING_TIME_ZONE": "UTC",
           **plugin_env("potluck_test_issuer_key", base=live_env)}
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_DIR), env["PYTHONPATH"]])
    billing_on()
    pricebook.create_version({
        "effective_from": "2026-01-01T00:00:00Z", "time_zone": "UTC",
        "windows": [{"name": "night", "days": "all", "start": "00:00", "end": "06:00",
                     "multiplier": "0.5"}],
        "models": {"m": {"input": "0.55", "cached_input": "0.14", "output": "2.19"}}})
    org = accounts.create_organization("Acme")
    node = Node.objects.create(name="gpu-1", queue="node.gpu-1", hostname="h")
    costs.assign("gpu-1", "h100")
    costs.set_cost("h100", "2", effective_from="2026-01-01T00:00:00Z")
    serve("m", node, [(0, 24)], gpus=1)
    usage.record_events([
        usage_record(org, model="m", prompt=1_000_000, cached=563_000, completion=300_000,
                     at=START + timedelta(hours=3)),  # night: half price
        usage_record(org, model="m", prompt=1_000_000, cached=563_000, completion=300_000,
                     at=START + timedelta(hours=13))])
    price_all()
    built = report.build(DAY, DAY + timedelta(days=1))
    row = built.models[0]
    list_price = Decimal("0.437") * Decimal("0.55") + Decimal("0.563") * Decimal("0.14") + \
        Decimal("0.3") * Decimal("2.19")
    assert row.theoretical_revenue == 2 * list_price
    assert row.billed_revenue == list_price + list_price / 2
    assert row.cost == Decimal(48)
    assert (row.input_tokens, row.cached_tokens, row.output_tokens) == (874_000, 1_126_000,
                                                                         600_000)
    assert row.cost_profit_margin == ((2 * list_price - 48) / 48 * 100).quantize(
        Decimal("0.01"))

    operator = user_client(org, "owner")
    operator.user.is_superuser = True
    operator.user.save()
    body = operator.get("/api/billing/report?month=2026-11").json()
    assert body["total"]["cost"] == "48.000000"
    assert user_client(org, "admin", email="a@acme.test").get(
        "/api/billing/report?month=2026-11").status_code == 403

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "potluck", "billing", "report",
                               "--month", "2026-11", *args], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "cost-profit margin %" in cli() and "48.00" in cli("--format", "table")
    rows = list(csv.reader(io.StringIO(cli("--format", "csv"))))
    assert rows[0][0] == "day" and rows[-1][0] == "total" and rows[-1][8] == "48.00"
    assert json.loads(cli("--format", "json"))["total"]["cost"] == "48.000000"
    bad = subprocess.run([sys.executable, "-m", "potluck", "billing", "report", "--month",
                          "November"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: --month")


@pytest.mark.parametrize("month", ["2026-13", "2026-1x", "November"])
def test_month_range_refuses_nonsense(month):
    with pytest.raises(ValueError):
        report.month_range(month)
