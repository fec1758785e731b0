# SPDX-License-Identifier: Apache-2.0
"""The scheduler turns deployments into Replica rows on live nodes; the API scopes them."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from potluck.errors import Conflict, Forbidden, InvalidInput, NotFound
from potluck.nodes import services as node_services
from potluck.nodes.models import Node
from potluck.registry.models import Kind, RegisteredModel, Source
from potluck.serving import services
from potluck.serving.cordon import cordon_node
from potluck.serving.models import Deployment, DeploymentState, Replica, ReplicaState
from potluck.serving.reconcile import restart_delay
from potluck.serving.scheduler import replace_lost_nodes, schedule

pytestmark = pytest.mark.django_db
_ports = itertools.count(8100)


def deploy(model, replicas: int = 1, **engine_args):
    placement = engine_args.pop("placement", None)
    return services.create_deployment(model, replicas, engine_args, placement,
                                      organization=model.organization, operator=True)


def nodes_of(deployment, *states: str) -> Counter:
    replicas = deployment.replica_set.all()
    if states:
        replicas = replicas.filter(state__in=states)
    return Counter(replicas.values_list("node__name", flat=True))


def run_as(replica: Replica, state: str, pid: int = 4242, port: int | None = None) -> None:
    """What a node agent would have written for a running server."""
    Replica.objects.filter(pk=replica.pk).update(
        state=state, pid=pid, port=port or next(_ports),
        ready_at=timezone.now() if state == ReplicaState.READY else None)


def test_replicas_spread_over_live_nodes_fewest_first(make_node, make_model):
    a, b = make_node("cpu-a"), make_node("cpu-b")
    first = deploy(make_model("first"), 3)
    assert schedule() == ["cpu-a", "cpu-b"]
    assert sorted(nodes_of(first).values()) == [1, 2]
    for replica in first.replica_set.all():
        assert replica.state == ReplicaState.STARTING
        assert replica.port is None and replica.pid is None and replica.gpu_ids == []
        assert replica.host == Node.objects.get(name=replica.node.name).address
    lighter = min((a, b), key=lambda n: nodes_of(first)[n.name])
    second = deploy(make_model("second"), 1)
    schedule()
    assert nodes_of(second) == {lighter.name: 1}
    schedule()  # converged: a second pass changes nothing
    assert Replica.objects.count() == 4


def test_placement_restricts_the_nodes(make_node, make_model):
    make_node("cpu-a")
    make_node("cpu-b")
    deployment = deploy(make_model(), 2, placement={"nodes": ["cpu-b"]})
    schedule()
    assert nodes_of(deployment) == {"cpu-b": 2}


def test_gpu_hosts_need_free_gpus_and_cpu_hosts_take_gpu_less_replicas(make_node, make_model):
    make_node("gpu-1", gpus=2, engine="vllm 0.11.0")
    make_node("cpu-a")
    on_gpus = deploy(make_model("big"), 3, gpus_per_replica=1)
    schedule()
    placed = list(on_gpus.replica_set.all())
    assert nodes_of(on_gpus) == {"gpu-1": 2}  # the third does not fit anywhere
    assert sorted(r.gpu_ids for r in placed) == [[0], [1]]
    on_cpu = deploy(make_model("small"), 2, gpus_per_replica=0)
    schedule()
    assert nodes_of(on_cpu) == {"cpu-a": 2}
    auto = deploy(make_model("auto"), 1)  # gpus_per_replica unset: GPUs are taken, so CPU
    schedule()
    assert nodes_of(auto) == {"cpu-a": 1}
    assert on_gpus.replica_set.count() == 2


def test_nodes_that_cannot_serve_take_nothing(make_node, make_model, redis_conn):
    make_node("no-engine", engine="")
    make_node("silent")
    redis_conn.delete(node_services.HEARTBEAT_KEY.format(name="silent"))
    make_node("cordoned")
    cordon_node("cordoned")
    deployment = deploy(make_model(), 2)
    assert schedule() == []
    assert deployment.replica_set.count() == 0
    make_node("fresh")
    schedule()
    assert nodes_of(deployment) == {"fresh": 2}


def test_scaling_down_stops_unstarted_replicas_then_drains_ready_ones(make_node, make_model,
                                                                      settings):
    make_node("cpu-a")
    make_node("cpu-b")
    deployment = deploy(make_model(), 4)
    schedule()
    replicas = list(deployment.replica_set.all())
    for replica in replicas[:3]:
        run_as(replica, ReplicaState.READY)
    services.scale_deployment(deployment, 2, organization=None, operator=True)
    schedule()
    states = Counter(deployment.replica_set.values_list("state", flat=True))
    assert states == {ReplicaState.READY: 2, ReplicaState.STOPPED: 1,
                      ReplicaState.DRAINING: 1}
    assert Replica.objects.get(pk=replicas[3].pk).state == ReplicaState.STOPPED  # never ran
    draining = deployment.replica_set.get(state=ReplicaState.DRAINING)
    expected = timezone.now() + timedelta(seconds=settings.SERVING_DRAIN_SECONDS)
    assert abs((draining.drain_deadline - expected).total_seconds()) < 5
    services.scale_deployment(deployment, 3, organization=None, operator=True)
    schedule()
    assert Counter(deployment.replica_set.values_list("state", flat=True))[
        ReplicaState.STARTING] == 1


def test_undeploy_drains_everything_then_stops_the_deployment(make_node, make_model):
    make_node("cpu-a")
    model = make_model()
    deployment = deploy(model, 2)
    schedule()
    first, second = deployment.replica_set.all()
    run_as(first, ReplicaState.READY)
    services.undeploy(deployment, organization=None, operator=True)
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.UNDEPLOYING
    assert Replica.objects.get(pk=first.pk).state == ReplicaState.DRAINING
    assert Replica.objects.get(pk=second.pk).state == ReplicaState.STOPPED  # had no process
    schedule()
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.UNDEPLOYING
    with pytest.raises(Conflict):
        deploy(model, 1)  # still undeploying
    Replica.objects.filter(pk=first.pk).update(state=ReplicaState.STOPPED)
    schedule()
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.STOPPED
    again = deploy(model, 1)
    assert again.pk != deployment.pk


def test_a_lost_nodes_replicas_are_written_off_and_replaced(make_node, make_model, redis_conn,
                                                            settings):
    make_node("cpu-a")
    make_node("cpu-b")
    deployment = deploy(make_model(), 2)
    schedule()
    for replica in deployment.replica_set.all():
        run_as(replica, ReplicaState.READY)
    lost = deployment.replica_set.get(node__name="cpu-a")
    redis_conn.delete(node_services.HEARTBEAT_KEY.format(name="cpu-a"))
    Node.objects.filter(name="cpu-a").update(
        last_heartbeat=timezone.now() - timedelta(seconds=settings.NODE_LOST_AFTER_SECONDS + 1))
    assert replace_lost_nodes() == ["cpu-a"]  # marks it lost and reschedules at once
    lost.refresh_from_db()
    assert lost.state == ReplicaState.FAILED and lost.reason == "node lost"
    assert lost.next_restart_at is None  # written off: never restarted
    assert nodes_of(deployment, ReplicaState.READY, ReplicaState.STARTING) == {"cpu-b": 2}


def test_a_lost_node_that_comes_back_gets_no_duplicate_and_stops_its_written_off_server(
        make_node, make_model, redis_conn, settings, tmp_path):
    """A host cut off (not dead) long enough to be lost rejoins with its vLLM server still
    running: its agent stops that server, and nothing is placed twice (issue 18)."""
    import subprocess
    import sys

    from potluck.serving import replica_process
    from potluck.serving.reconcile import NodeReconciler

    settings.SERVING_STOP_GRACE_SECONDS = 5
    settings.DATA_DIR = tmp_path
    make_node("cpu-a")
    make_node("cpu-b")
    deployment = deploy(make_model(), 2)
    schedule()
    port = next(_ports)
    # Stands for the vLLM server that kept running on cpu-b through the partition.
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                               replica_process.API_SERVER_MODULE, "--port", str(port)],
                              start_new_session=True)
    try:
        for replica in deployment.replica_set.all():
            on_b = replica.node.name == "cpu-b"
            run_as(replica, ReplicaState.READY, pid=server.pid if on_b else 4242,
                   port=port if on_b else None)
        written_off = deployment.replica_set.get(node__name="cpu-b")
        redis_conn.delete(node_services.HEARTBEAT_KEY.format(name="cpu-b"))
        Node.objects.filter(name="cpu-b").update(last_heartbeat=timezone.now() - timedelta(
            seconds=settings.NODE_LOST_AFTER_SECONDS + 1))
        assert replace_lost_nodes() == ["cpu-b"]
        assert nodes_of(deployment, ReplicaState.READY, ReplicaState.STARTING) == {"cpu-a": 2}

        make_node("cpu-b")  # the partition heals: its agent heartbeats again ...
        assert Node.objects.get(name="cpu-b").state == "online"
        NodeReconciler("cpu-b").reconcile_once()  # ... and reconciles its node
        assert server.wait(timeout=30) is not None  # the written-off server is stopped
        schedule()
        written_off.refresh_from_db()
        assert (written_off.state, written_off.pid, written_off.next_restart_at) == (
            ReplicaState.FAILED, None, None)
        assert nodes_of(deployment, ReplicaState.READY, ReplicaState.STARTING) == {"cpu-a": 2}
    finally:
        server.kill()
        server.wait()


def test_a_failed_replica_waiting_for_its_restart_is_not_replaced(make_node, make_model):
    make_node("cpu-a")
    deployment = deploy(make_model(), 1)
    schedule()
    Replica.objects.update(state=ReplicaState.FAILED, reason="process killed by SIGKILL",
                           next_restart_at=timezone.now() + timedelta(seconds=5))
    schedule()
    assert deployment.replica_set.count() == 1
    services.scale_deployment(deployment, 0, organization=None, operator=True)
    schedule()
    assert deployment.replica_set.get().state == ReplicaState.STOPPED


def test_scheduling_wakes_the_agents_of_the_nodes_it_changed(
        make_node, make_model, redis_conn, django_capture_on_commit_callbacks):
    make_node("cpu-a")
    make_node("cpu-b")
    redis_conn.delete("node.cpu-a", "node.cpu-b")
    deploy(make_model(), 1)
    with django_capture_on_commit_callbacks(execute=True):  # tasks are sent after commit
        schedule()
    woken = [name for name in ("cpu-a", "cpu-b") if redis_conn.llen(f"node.{name}")]
    assert len(woken) == 1
    message = json.loads(redis_conn.lindex(f"node.{woken[0]}", 0))
    assert message["headers"]["task"] == "potluck.serving.reconcile"
    assert message["headers"]["argsrepr"] == repr((woken[0],))


def test_restarts_back_off_exponentially_up_to_five_minutes():
    assert [restart_delay(n).total_seconds() for n in range(8)] == [
        5, 10, 20, 40, 80, 160, 300, 300]


@pytest.mark.parametrize("replicas,engine_args,placement,field", [
    (17, {}, None, "replicas"),
    (-1, {}, None, "replicas"),
    (True, {}, None, "replicas"),
    (1, {"dtype": "int8"}, None, "engine_args.dtype"),
    (1, {"max_model_len": 4096}, None, "engine_args.max_model_len"),
    (1, {"max_model_len": "512"}, None, "engine_args.max_model_len"),
    (1, {"gpus_per_replica": -1}, None, "engine_args.gpus_per_replica"),
    (1, {"enable_lora": "yes"}, None, "engine_args.enable_lora"),
    (1, {"enable_lora": True, "max_lora_rank": 12}, None, "engine_args.max_lora_rank"),
    (1, {"max_lora_rank": 8}, None, "engine_args.max_lora_rank"),
    (1, {"extra_args": "--foo"}, None, "engine_args.extra_args"),
    (1, {"extra_args": ["--seed", "1"]}, None, "engine_args.extra_args"),
    (1, {"tensor_parallel": 2}, None, "engine_args"),
    (1, {"max_num_seqs": 0}, None, "engine_args.max_num_seqs"),
    (1, {"gpu_memory_utilization": 1.5}, None, "engine_args.gpu_memory_utilization"),
    (1, {"max_loras": 2}, None, "engine_args.max_loras"),
    (1, {"gpus_per_replica": 9}, None, "engine_args.gpus_per_replica"),
    (1, {}, {"zone": "eu"}, "placement"),
    (1, {}, {"nodes": "cpu-a"}, "placement.nodes"),
])
def test_bad_deployments_are_refused_naming_the_field(make_model, replicas, engine_args,
                                                      placement, field):
    with pytest.raises(InvalidInput) as refused:
        services.create_deployment(make_model(), replicas, engine_args, placement,
                                   organization=None, operator=True)
    assert refused.value.field == field, refused.value.message
    assert Deployment.objects.count() == 0


def test_good_engine_args_are_stored_normalised(make_model):
    deployment = deploy(make_model(), 1, dtype="bfloat16", max_model_len=2048,
                        enable_lora=True, max_lora_rank=16, seed=1,
                        gpu_memory_utilization=1 / 2)
    assert deployment.engine_args == {"dtype": "bfloat16", "max_model_len": 2048,
                                      "enable_lora": True, "max_lora_rank": 16, "seed": 1,
                                      "gpu_memory_utilization": 0.5}
    assert deployment.operator_args == []


def test_who_may_deploy_what(make_model, org, other_org):
    public = make_model("public-model")
    own = make_model("own-model", organization=org)
    theirs = make_model("their-model", organization=other_org)
    adapter = RegisteredModel.objects.create(
        name="adapter", organization=org, kind=Kind.ADAPTER, base=own, source=Source.LOCAL,
        path="/models/adapter")
    with pytest.raises(Forbidden):
        services.create_deployment(public, 1, organization=org)
    with pytest.raises(Forbidden):
        services.create_deployment(public, 1, organization=None)  # not the operator
    with pytest.raises(NotFound):
        services.create_deployment(theirs, 1, organization=org)
    with pytest.raises(InvalidInput):
        services.create_deployment(own, 1, organization=None, operator=True)
    with pytest.raises(InvalidInput) as refused:
        services.create_deployment(adapter, 1, organization=org)
    assert refused.value.field == "model"
    deployment = services.create_deployment(own, 1, organization=org)
    with pytest.raises(Conflict):
        services.create_deployment(own, 2, organization=org)
    with pytest.raises(NotFound):
        services.scale_deployment(deployment, 2, organization=other_org)
    with pytest.raises(NotFound):
        services.undeploy(deployment, organization=other_org)


# -- the management API -------------------------------------------------------------------


def test_an_org_deploys_scales_and_undeploys_its_model_over_the_api(client_for, org,
                                                                   make_model, make_node):
    make_node("cpu-a")
    make_model("mine", organization=org)
    client = client_for(org)
    created = client.post("/api/deployments", {"model": "mine", "replicas": 2,
                                               "engine_args": {"dtype": "float32"}},
                          format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["model"] == "mine" and body["public"] is False and body["replicas"] == 2
    assert body["engine_args"]["dtype"] == "float32"
    schedule()
    shown = client.get(f"/api/deployments/{body['id']}").json()
    assert shown["replica_counts"]["starting"] == 2
    scaled = client.patch(f"/api/deployments/{body['id']}", {"replicas": 1}, format="json")
    assert scaled.status_code == 200 and scaled.json()["replicas"] == 1
    replicas = client.get(f"/api/replicas?deployment={body['id']}").json()["results"]
    assert len(replicas) == 2 and {r["node"] for r in replicas} == {"cpu-a"}
    gone = client.delete(f"/api/deployments/{body['id']}")
    assert gone.status_code == 202 and gone.json()["state"] in ("undeploying", "stopped")


def test_the_api_refuses_bad_input_and_read_only_keys(client_for, org, make_model):
    make_model("mine", organization=org)
    client = client_for(org)
    bad = client.post("/api/deployments", {"model": "mine", "engine_args": {"dtype": "int4"}},
                      format="json")
    assert bad.status_code == 400 and "engine_args.dtype" in bad.json()
    missing = client.post("/api/deployments", {"model": "nope"}, format="json")
    assert missing.status_code == 404 and "model" in missing.json()
    reader = client_for(org, scopes=["read"])
    assert reader.post("/api/deployments", {"model": "mine"},
                       format="json").status_code == 403
    assert client.get("/api/replicas?deployment=not-a-uuid").status_code == 400


def test_other_orgs_deployments_and_replicas_are_not_found(client_for, org, other_org,
                                                          make_model, make_node):
    make_node("cpu-a")
    deployment = services.create_deployment(make_model("mine", organization=org), 1,
                                            organization=org)
    schedule()
    replica = deployment.replica_set.get()
    outsider = client_for(other_org)
    assert outsider.get("/api/deployments").json()["results"] == []
    assert outsider.get(f"/api/deployments/{deployment.pk}").status_code == 404
    assert outsider.patch(f"/api/deployments/{deployment.pk}", {"replicas": 3},
                          format="json").status_code == 404
    assert outsider.delete(f"/api/deployments/{deployment.pk}").status_code == 404
    assert outsider.get(f"/api/replicas?deployment={deployment.pk}").json()["results"] == []
    assert outsider.get(f"/api/replicas/{replica.pk}").status_code == 404
    assert outsider.get("/api/replicas/not-a-uuid").status_code == 404
    assert Deployment.objects.get(pk=deployment.pk).replicas == 1
    assert Deployment.objects.get(pk=deployment.pk).state == DeploymentState.ACTIVE


def test_public_deployments_are_visible_read_only_without_their_logs(client_for, org,
                                                                     make_model, make_node):
    make_node("cpu-a")
    deployment = deploy(make_model("shared"), 1)
    schedule()
    Replica.objects.update(state=ReplicaState.FAILED, reason="process exited with code 1",
                           log_tail="Traceback: /secret/path", port=8100)
    client = client_for(org)
    listed = client.get("/api/deployments").json()["results"]
    assert [d["model"] for d in listed] == ["shared"] and listed[0]["public"] is True
    assert listed[0]["replica_counts"]["failed"] == 1
    assert client.patch(f"/api/deployments/{deployment.pk}", {"replicas": 2},
                        format="json").status_code == 403
    assert client.delete(f"/api/deployments/{deployment.pk}").status_code == 403
    [replica] = client.get("/api/replicas").json()["results"]
    assert replica["state"] == "failed" and replica["model"] == "shared"
    assert replica["reason"] is None and replica["log_tail"] is None
    assert replica["port"] is None and replica["pid"] is None
