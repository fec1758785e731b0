# SPDX-License-Identifier: Apache-2.0
"""An organization runs at most its quota of fine-tuning jobs at once (validating, queued
or running); past it, creating or resuming one is a 429 in OpenAI's shape (issue 19)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from potluck.finetune import services
from potluck.finetune.models import FineTuningJob, JobStatus

pytestmark = pytest.mark.django_db


def _create(client, training_file):
    return client.post("/v1/fine_tuning/jobs", {"model": "potluck-demo",
                                                "training_file": training_file.id},
                       format="json")


@override_settings(ORG_MAX_CONCURRENT_FINE_TUNES=2)
def test_past_the_quota_a_new_job_is_a_429_and_a_finished_one_frees_a_place(
        org, other_org, client_for, upload, demo_model):
    client = client_for(org)
    training = upload(org)
    first, second = (_create(client, training).json() for _ in range(2))

    third = _create(client, training)

    assert third.status_code == 429
    assert third.json() == {"error": {
        "message": "this organization may use at most 2 fine-tuning jobs at once and has 2; "
                   "asking for 1 more is over its quota (the operator sets quotas with "
                   "`potluck orgs quota`)",
        "type": "rate_limit_error", "param": "model", "code": "quota_exceeded"}}
    assert FineTuningJob.objects.filter(organization=org).count() == 2
    assert _create(client_for(other_org), upload(other_org)).status_code == 200  # its own
    client.post(f"/v1/fine_tuning/jobs/{first['id']}/cancel")
    assert _create(client, training).status_code == 200
    assert second["status"] == "validating_files"


@override_settings(ORG_MAX_CONCURRENT_FINE_TUNES=1)
def test_a_paused_job_holds_no_place_but_resuming_it_needs_one(org, client_for, upload,
                                                               demo_model):
    client = client_for(org)
    paused = services.validate_job(_create(client, upload(org)).json()["id"])
    client.post(f"/v1/fine_tuning/jobs/{paused.id}/pause")
    other = _create(client, upload(org))
    assert other.status_code == 200  # the paused job holds no place

    resumed = client.post(f"/v1/fine_tuning/jobs/{paused.id}/resume")

    assert resumed.status_code == 429
    assert resumed.json()["error"]["param"] == "fine_tuning_job_id"
    assert FineTuningJob.objects.get(pk=paused.id).status == JobStatus.PAUSED
