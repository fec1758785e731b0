# SPDX-License-Identifier: Apache-2.0
"""GET /api/fine-tuning/jobs/{id}/metrics: the whole loss curve, from step 1.

The event list answers at most 100 events a page, newest first, so a chart built from it
lost the start of any run longer than 100 steps. Here the trainer's own event writer
reports a run of 250 steps (and a resumed stretch that repeats steps), the supervisor's
ingestion records them as it does for a live job, and the curve comes back whole — or in
equal buckets when a chart asks for fewer points.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from potluck.finetune import services
from potluck.finetune.models import FineTuningJob
from potluck.finetune.trainer.events import EventLog, read_events
from potluck.finetune.trainer_events import record_trainer_events

pytestmark = pytest.mark.django_db

TOTAL = 250


def loss_at(step: int) -> float:
    return 3.0 - step / 100


@pytest.fixture
def job(org, upload, demo_model) -> FineTuningJob:
    made = services.create_job(org, {"model": "potluck-demo", "training_file": upload(org).id})
    return services.validate_job(made.id)


def report(job: FineTuningJob, directory: Path, steps: range, *, offset: float = 0.0) -> None:
    """The trainer's EventLog writes the steps; the supervisor ingests what is new."""
    log = EventLog(directory)
    for step in steps:
        data = {"step": step, "total_steps": TOTAL, "epoch": 1 + step // 100,
                "train_loss": loss_at(step) + offset, "eta_seconds": float(TOTAL - step)}
        if step % 50 == 0:
            data["valid_loss"] = loss_at(step) + 0.5
        log.emit("metrics", f"Step {step}/{TOTAL}", data)
    log.close()
    fresh = [e for e in read_events(directory / "events.jsonl") if e["seq"] > job.last_event_seq]
    record_trainer_events(job, fresh)


def test_a_run_longer_than_a_page_of_events_is_plotted_from_its_first_step(
        org, job, user_client, tmp_path):
    report(job, tmp_path, range(1, TOTAL + 1))
    client = user_client(org, "viewer")
    assert client.get(f"/v1/fine_tuning/jobs/{job.id}/events",
                      {"limit": 100}).json()["has_more"] is True  # a page is not the run

    response = client.get(f"/api/fine-tuning/jobs/{job.id}/metrics")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["job_id"] == job.id and body["bucket_steps"] == 1
    assert body["steps_recorded"] == TOTAL
    points = body["points"]
    assert [p["step"] for p in points] == list(range(1, TOTAL + 1))
    assert points[0]["train_loss"] == pytest.approx(loss_at(1))
    assert points[-1]["train_loss"] == pytest.approx(loss_at(TOTAL))
    assert points[49]["valid_loss"] == pytest.approx(loss_at(50) + 0.5)
    assert points[48]["valid_loss"] is None
    assert body["latest"]["step"] == TOTAL and body["latest"]["total_steps"] == TOTAL


def test_a_resumed_run_counts_each_step_once_with_its_latest_report(org, job, user_client,
                                                                     tmp_path):
    report(job, tmp_path, range(1, 121))  # paused after 120; last checkpoint at 100
    report(job, tmp_path, range(101, 131), offset=1.0)  # resumed: 101..120 run again

    body = user_client(org, "member").get(f"/api/fine-tuning/jobs/{job.id}/metrics").json()

    assert body["steps_recorded"] == 130
    by_step = {p["step"]: p["train_loss"] for p in body["points"]}
    assert sorted(by_step) == list(range(1, 131))
    assert by_step[100] == pytest.approx(loss_at(100))
    assert by_step[101] == pytest.approx(loss_at(101) + 1.0)
    assert body["latest"]["step"] == 130


def test_fewer_points_are_equal_buckets_of_the_whole_run(org, job, user_client, tmp_path):
    report(job, tmp_path, range(1, TOTAL + 1))

    body = user_client(org, "member").get(f"/api/fine-tuning/jobs/{job.id}/metrics",
                                          {"max_points": 100}).json()

    assert body["bucket_steps"] == 3 and body["steps_recorded"] == TOTAL
    points = body["points"]
    assert len(points) == 84  # ceil(250 / 3)
    assert points[0] == {"step": 3, "train_loss": pytest.approx(loss_at(2)),
                         "valid_loss": None}
    assert points[-1]["step"] == TOTAL  # the last bucket holds steps 250 alone
    assert points[-1]["train_loss"] == pytest.approx(loss_at(TOTAL))
    assert points[16]["step"] == 51 and points[16]["valid_loss"] == pytest.approx(
        loss_at(50) + 0.5)


def test_a_job_without_steps_yet_has_an_empty_curve(org, job, user_client):
    body = user_client(org, "member").get(f"/api/fine-tuning/jobs/{job.id}/metrics").json()
    assert (body["points"], body["steps_recorded"], body["latest"]) == ([], 0, None)


@pytest.mark.parametrize("value", ["0", "9", "5001", "many"])
def test_a_bad_max_points_is_a_400_naming_it(org, job, user_client, value):
    response = user_client(org, "member").get(f"/api/fine-tuning/jobs/{job.id}/metrics",
                                              {"max_points": value})
    assert response.status_code == 400
    assert "max_points" in response.json()


def test_another_orgs_job_is_404_and_so_is_an_unknown_one(org, other_org, job, user_client,
                                                          client_for, tmp_path):
    report(job, tmp_path, range(1, 11))
    theirs = user_client(other_org, "owner")
    assert theirs.get(f"/api/fine-tuning/jobs/{job.id}/metrics").status_code == 404
    assert client_for(other_org, ["read"]).get(
        f"/api/fine-tuning/jobs/{job.id}/metrics").status_code == 404
    assert user_client(org, "member").get(
        "/api/fine-tuning/jobs/ftjob-nope/metrics").status_code == 404
    assert client_for(org, ["read"]).get(
        f"/api/fine-tuning/jobs/{job.id}/metrics").status_code == 200
