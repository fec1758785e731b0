# SPDX-License-Identifier: Apache-2.0
"""/v1/fine_tuning/jobs: checks at create, OpenAI shapes, cancel, tenancy, scheduling.

The trainer itself runs in test_job_resume.py and the end-to-end test; here the jobs
move through their states by the same services the tasks call.
"""

from __future__ import annotations

import pytest

from potluck.finetune import scheduler, services
from potluck.finetune.models import FineTuningEvent, FineTuningJob, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def training_file(org, upload):
    return upload(org)


def create(client, **body):
    return client.post("/v1/fine_tuning/jobs", body, format="json")


def test_create_returns_an_openai_job_that_validates_then_queues(
        org, client_for, training_file, demo_model):
    client = client_for(org)
    response = create(client, model="potluck-demo", training_file=training_file.id,
                      suffix="owl", seed=7, hyperparameters={"n_epochs": 3},
                      metadata={"team": "search"})
    assert response.status_code == 200, response.json()
    job = response.json()
    assert job["object"] == "fine_tuning.job" and job["id"].startswith("ftjob-")
    assert (job["status"], job["model"], job["seed"], job["training_file"]) == (
        "validating_files", "potluck-demo", 7, training_file.id)
    assert job["hyperparameters"] == {"n_epochs": 3, "batch_size": "auto",
                                      "learning_rate_multiplier": "auto"}
    assert job["adapter"] == {"type": "lora", "rank": 8, "alpha": 16, "dropout": 0.0,
                              "target_modules": None}
    assert job["fine_tuned_model"] is None and job["metadata"] == {"team": "search"}

    services.validate_job(job["id"])
    queued = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
    assert queued["status"] == "queued"
    # "auto" resolved from the 24 examples: numbers the trainer will use.
    assert queued["hyperparameters"]["n_epochs"] == 3
    assert isinstance(queued["hyperparameters"]["batch_size"], int)
    assert queued["hyperparameters"]["learning_rate_multiplier"] == 1.0
    assert queued["learning_rate"] == 5e-3  # the base rate for a model this small (13 MiB)
    messages = [e["message"] for e in
                client.get(f"/v1/fine_tuning/jobs/{job['id']}/events").json()["data"]]
    assert messages[0] == "Job enqueued"  # newest first, as OpenAI lists them
    assert any("24 training examples" in m for m in messages)


@pytest.mark.parametrize(("body", "param", "needle"), [
    ({"model": "nope"}, "model", "no model named 'nope'"),
    ({"training_file": "file-missing"}, "training_file", "no file 'file-missing'"),
    ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs", "from 1 to 50"),
    ({"hyperparameters": {"batch_size": 2.5}}, "hyperparameters.batch_size", "whole number"),
    ({"hyperparameters": {"learning_rate_multiplier": -1}},
     "hyperparameters.learning_rate_multiplier", "auto"),
    ({"hyperparameters": {"warmup": 3}}, "hyperparameters.warmup", "unknown hyperparameter"),
    ({"adapter": {"rank": 3}}, "adapter.rank", "one of 1, 2, 4, 8"),
    ({"adapter": {"type": "qlora"}}, "adapter.type", '"lora" or "full"'),
    ({"adapter": {"type": "full", "rank": 8}}, "adapter.rank", "LoRA only"),
    ({"suffix": "Has Spaces"}, "suffix", "lowercase"),
    ({"seed": -1}, "seed", "whole number"),
    ({"integrations": [{"type": "wandb"}]}, "integrations", "not supported"),
    ({"temperature": 1}, "temperature", "unknown parameter"),
    ({"metadata": {"k": 1}}, "metadata.k", "values must be strings"),
])
def test_bad_requests_are_400_in_openai_shape_and_leave_no_job(
        org, client_for, training_file, demo_model, body, param, needle):
    full = {"model": "potluck-demo", "training_file": training_file.id, **body}
    response = create(client_for(org), **full)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert needle in error["message"], error
    assert not FineTuningJob.objects.exists()


def test_files_of_the_wrong_purpose_or_another_org_are_refused(
        org, other_org, client_for, upload, demo_model):
    batch_input = upload(org, b'{"custom_id": "a", "method": "POST", "url": '
                              b'"/v1/completions", "body": {"model": "potluck-demo"}}\n',
                         purpose="batch", filename="in.jsonl")
    theirs = upload(other_org)
    client = client_for(org)
    wrong = create(client, model="potluck-demo", training_file=batch_input.id).json()["error"]
    assert 'purpose "fine-tune"' in wrong["message"] and wrong["param"] == "training_file"
    stolen = create(client, model="potluck-demo", training_file=theirs.id).json()["error"]
    assert f"no file {theirs.id!r}" in stolen["message"]
    validation = create(client, model="potluck-demo", training_file=upload(org).id,
                        validation_file=theirs.id).json()["error"]
    assert validation["param"] == "validation_file"
    assert not FineTuningJob.objects.exists()


def test_an_adapter_or_a_rank_the_deployment_cannot_serve_is_refused(
        org, client_for, training_file, demo_model, tmp_path):
    from potluck.serving.services import create_deployment

    create_deployment(demo_model, 1, {"enable_lora": True, "max_lora_rank": 8},
                      organization=None, operator=True)
    client = client_for(org)
    error = create(client, model="potluck-demo", training_file=training_file.id,
                   adapter={"rank": 16}).json()["error"]
    assert error["param"] == "adapter.rank" and "max_lora_rank 8" in error["message"]
    assert create(client, model="potluck-demo", training_file=training_file.id,
                  adapter={"rank": 8}).status_code == 200


def test_another_orgs_key_sees_nothing_and_touches_nothing(
        org, other_org, client_for, training_file, demo_model):
    job = create(client_for(org), model="potluck-demo",
                 training_file=training_file.id).json()
    theirs = client_for(other_org)
    for path in ("", "/events", "/checkpoints"):
        response = theirs.get(f"/v1/fine_tuning/jobs/{job['id']}{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found" or response.json()["error"]
    assert theirs.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").status_code == 404
    assert theirs.get("/v1/fine_tuning/jobs").json()["data"] == []
    assert FineTuningJob.objects.get(pk=job["id"]).status == JobStatus.VALIDATING_FILES


def test_a_read_only_key_cannot_create_or_cancel(org, client_for, training_file, demo_model):
    reader = client_for(org, scopes=["read"])
    response = create(reader, model="potluck-demo", training_file=training_file.id)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


def test_cancel_before_running_is_immediate_and_a_finished_job_is_a_409(
        org, client_for, training_file, demo_model):
    client = client_for(org)
    job = create(client, model="potluck-demo", training_file=training_file.id).json()
    services.validate_job(job["id"])
    cancelled = client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    again = client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["error"]["message"]
    services.validate_job(job["id"])  # a late validation task changes nothing
    assert FineTuningJob.objects.get(pk=job["id"]).status == JobStatus.CANCELLED


def test_a_deleted_training_file_fails_the_job_in_validation(
        org, client_for, training_file, demo_model):
    from potluck.files import services as files

    job = create(client_for(org), model="potluck-demo",
                 training_file=training_file.id).json()
    files.delete_file(org, training_file.id)
    failed = services.validate_job(job["id"])
    assert failed.status == JobStatus.FAILED
    assert failed.error["code"] == "invalid_training_file"
    assert training_file.id in failed.error["message"]


def test_list_pages_with_after_and_limit(org, client_for, upload, demo_model):
    client = client_for(org)
    made = [create(client, model="potluck-demo", training_file=upload(org).id).json()["id"]
            for _ in range(3)]
    first = client.get("/v1/fine_tuning/jobs?limit=2").json()
    assert [j["id"] for j in first["data"]] == made[::-1][:2] and first["has_more"]
    rest = client.get(f"/v1/fine_tuning/jobs?limit=2&after={first['last_id']}").json()
    assert [j["id"] for j in rest["data"]] == [made[0]] and not rest["has_more"]
    assert client.get("/v1/fine_tuning/jobs?limit=0").status_code == 400


def test_queued_jobs_go_to_live_nodes_with_a_free_slot_oldest_first(
        org, client_for, upload, demo_model, live_node, settings):
    settings.FINETUNE_SLOTS_PER_NODE = 1
    client = client_for(org)
    ids = [create(client, model="potluck-demo", training_file=upload(org).id).json()["id"]
           for _ in range(3)]
    for job_id in ids:
        services.validate_job(job_id)
    assert scheduler.schedule() == []  # no live node: everything waits
    live_node("node-a")
    live_node("node-b")
    assigned = scheduler.schedule()
    assert assigned == ids[:2]
    jobs = {j.id: j for j in FineTuningJob.objects.all()}
    assert {jobs[ids[0]].node, jobs[ids[1]].node} == {"node-a", "node-b"}
    assert jobs[ids[0]].status == JobStatus.RUNNING and jobs[ids[0]].started_at
    assert jobs[ids[2]].status == JobStatus.QUEUED
    assert FineTuningEvent.objects.filter(job_id=ids[0],
                                          message__startswith="Fine-tuning job started").exists()


def test_jobs_of_a_lost_node_are_requeued_then_failed_after_too_many_attempts(
        org, client_for, upload, demo_model, live_node, settings, redis_conn):
    from potluck.nodes.models import Node, NodeState

    settings.FINETUNE_MAX_ATTEMPTS = 2
    job_id = create(client_for(org), model="potluck-demo",
                    training_file=upload(org).id).json()["id"]
    services.validate_job(job_id)
    live_node("node-a")
    assert scheduler.schedule() == [job_id]
    FineTuningJob.objects.filter(pk=job_id).update(attempts=1, pid=4242)
    Node.objects.filter(name="node-a").update(state=NodeState.LOST)
    redis_conn.flushdb()  # its heartbeat is gone too
    assert scheduler.requeue_jobs_of_lost_nodes() == [job_id]
    job = FineTuningJob.objects.get(pk=job_id)
    assert (job.status, job.node, job.pid) == (JobStatus.QUEUED, "", None)

    live_node("node-b")
    assert scheduler.schedule() == [job_id]
    FineTuningJob.objects.filter(pk=job_id).update(attempts=2)
    Node.objects.filter(name="node-b").update(state=NodeState.LOST)
    scheduler.requeue_jobs_of_lost_nodes()
    job = FineTuningJob.objects.get(pk=job_id)
    assert job.status == JobStatus.FAILED and job.error["code"] == "node_lost"
    assert "node-b was lost" in job.error["message"]


def test_the_base_learning_rate_follows_the_model_size_unless_the_operator_fixes_it(settings):
    from potluck.finetune.hyperparameters import base_learning_rate

    settings.FINETUNE_LORA_LEARNING_RATE = 0
    assert [base_learning_rate("lora", size) for size in (13 * 2**20, 500 * 2**20, 14 * 2**30)
            ] == [5e-3, 1e-3, 2e-4]
    assert base_learning_rate("full", 14 * 2**30) == 1e-5
    settings.FINETUNE_LORA_LEARNING_RATE = 3e-4
    assert base_learning_rate("lora", 13 * 2**20) == 3e-4
