# SPDX-License-Identifier: Apache-2.0
"""Per-organization capacity quotas on replicas and GPUs (issue 19: one organization
registered the same folder under many names and deployed each up to the per-deployment
cap, starving the others)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from django.db import connection
from django.test import override_settings

from potluck.accounts import quotas
from potluck.errors import QuotaExceeded
from potluck.registry.models import RegisteredModel, Source
from potluck.serving import services
from potluck.serving.models import Deployment

pytestmark = pytest.mark.django_db


def _same_folder(org, names: list[str]) -> list[RegisteredModel]:
    """One model folder registered under several names."""
    return [RegisteredModel.objects.create(
        name=name, organization=org, source=Source.LOCAL, path="/models/shared-folder",
        architecture="LlamaForCausalLM", context_length=2048) for name in names]


@override_settings(ORG_MAX_REPLICAS=16)
def test_the_same_folder_under_many_names_does_not_multiply_capacity(org, client_for):
    _same_folder(org, ["copy-1", "copy-2", "copy-3"])
    client = client_for(org)

    first = client.post("/api/deployments", {"model": "copy-1", "replicas": 10},
                        format="json")
    second = client.post("/api/deployments", {"model": "copy-2", "replicas": 6},
                         format="json")
    third = client.post("/api/deployments", {"model": "copy-3", "replicas": 1},
                        format="json")

    assert first.status_code == second.status_code == 201
    assert third.status_code == 403
    assert third.json() == {"replicas": [
        "this organization may use at most 16 replicas and has 16; asking for 1 more is "
        "over its quota (the operator sets quotas with `potluck orgs quota`)"]}
    assert Deployment.objects.filter(organization=org).count() == 2


@override_settings(ORG_MAX_REPLICAS=4)
def test_scaling_up_counts_against_the_quota_and_scaling_down_frees_it(org, client_for,
                                                                      other_org):
    _same_folder(org, ["a", "b"])
    client = client_for(org)
    made = client.post("/api/deployments", {"model": "a", "replicas": 3},
                       format="json").json()
    assert client.patch(f"/api/deployments/{made['id']}", {"replicas": 4},
                        format="json").status_code == 200
    too_many = client.patch(f"/api/deployments/{made['id']}", {"replicas": 5}, format="json")
    assert too_many.status_code == 403 and "at most 4 replicas" in too_many.json()["replicas"][0]
    assert client.patch(f"/api/deployments/{made['id']}", {"replicas": 1},
                        format="json").status_code == 200
    assert client.post("/api/deployments", {"model": "b", "replicas": 3},
                       format="json").status_code == 201
    # Another organization's quota is its own.
    _same_folder(other_org, ["theirs"])
    assert client_for(other_org).post("/api/deployments", {"model": "theirs", "replicas": 4},
                                      format="json").status_code == 201


@override_settings(ORG_MAX_GPUS=8, ORG_MAX_REPLICAS=100)
def test_gpus_count_what_the_replicas_would_take(org, make_node):
    a, b, c = _same_folder(org, ["a", "b", "c"])
    make_node("gpu-a", gpus=8)
    services.create_deployment(a, 2, {"gpus_per_replica": 3}, organization=org)  # 6 GPUs
    with pytest.raises(QuotaExceeded) as refused:
        services.create_deployment(b, 1, {"gpus_per_replica": 3}, organization=org)
    assert "at most 8 GPUs and has 6" in refused.value.message
    services.create_deployment(b, 2, {}, organization=org)  # unset: one each on a GPU pool
    services.create_deployment(c, 5, {"gpus_per_replica": 0}, organization=org)  # CPU
    assert Deployment.objects.filter(organization=org).count() == 3


@override_settings(ORG_MAX_GPUS=0, ORG_MAX_REPLICAS=100)
def test_on_a_cpu_only_pool_replicas_take_no_gpus(org, make_node):
    (a,) = _same_folder(org, ["a"])
    make_node("cpu-a")
    services.create_deployment(a, 3, {}, organization=org)
    assert Deployment.objects.get(model=a).replicas == 3


@override_settings(ORG_MAX_REPLICAS=2)
def test_the_operator_is_not_bound_by_quotas(org):
    (a,) = _same_folder(org, ["a"])
    deployment = services.create_deployment(a, 5, {}, organization=org, operator=True)
    services.scale_deployment(deployment, 9, organization=None, operator=True)
    assert Deployment.objects.get(pk=deployment.pk).replicas == 9


def test_the_operator_sets_an_organizations_own_quotas(org, client_for, live_env):
    _same_folder(org, ["a"])

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "potluck", "orgs", "quota", org.slug,
                               *args], env=live_env, capture_output=True, text=True,
                              timeout=120, check=False)

    set_ = cli("--replicas", "2", "--fine-tunes", "1")
    assert set_.returncode == 0, set_.stderr
    assert "replicas: 2\n" in set_.stdout and "concurrent_fine_tunes: 1\n" in set_.stdout
    assert client_for(org).get(f"/api/orgs/{org.slug}").json()["quotas"]["replicas"] == 2
    refused = client_for(org).post("/api/deployments", {"model": "a", "replicas": 3},
                                   format="json")
    assert refused.status_code == 403
    reset = cli("--replicas", "default")
    assert "replicas: 16 (server default)" in reset.stdout
    bad = cli("--gpus", "many")
    assert bad.returncode == 1 and "--gpus takes a whole number" in bad.stderr


@override_settings(ORG_MAX_REPLICAS=16)
def test_two_concurrent_deployments_cannot_both_slip_past_the_quota(transactional_db, org,
                                                                     monkeypatch):
    models = _same_folder(org, ["race-1", "race-2"])
    checked = quotas.check

    def slow_check(*args, **kwargs):  # widen the window between the check and the insert
        checked(*args, **kwargs)
        time.sleep(1)

    monkeypatch.setattr(quotas, "check", slow_check)
    results: dict[str, str] = {}

    def deploy(model: RegisteredModel) -> None:
        try:
            services.create_deployment(model, 10, {}, organization=org)
            results[model.name] = "created"
        except QuotaExceeded:
            results[model.name] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=deploy, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results.values()) == ["created", "refused"]
    assert sum(Deployment.objects.filter(organization=org).values_list("replicas",
                                                                       flat=True)) == 10
