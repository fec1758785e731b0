# SPDX-License-Identifier: Apache-2.0
"""The node agent starts trainers at the node's CPU share for training, so a trainer
beside a replica and the gateway takes the CPU that neither of them is using."""

from __future__ import annotations

import os

import pytest

from potluck.finetune import scheduler, services
from potluck.finetune.models import FineTuningJob
from potluck.finetune.reconcile import TrainerReconciler
from potluck.serving import cpu_share

pytestmark = pytest.mark.django_db


def test_a_started_trainer_runs_in_the_configured_class_and_nice(
        org, upload, demo_model, live_node, settings, file_storage):
    settings.FINETUNE_TRAINER_CPU_CLASS = "batch"
    settings.FINETUNE_TRAINER_CPU_NICE = 15
    job = services.validate_job(services.create_job(
        org, {"model": "potluck-demo", "training_file": upload(org).id}).id)
    live_node("node-a")
    assert scheduler.schedule() == [job.id]
    supervisor = TrainerReconciler("node-a")
    try:
        supervisor.reconcile_once()
        pid = FineTuningJob.objects.get(pk=job.id).pid
        assert pid is not None
        tids = cpu_share.thread_ids(pid)
        assert tids
        assert {(os.sched_getscheduler(t), os.getpriority(os.PRIO_PROCESS, t)) for t in tids} \
            == {(os.SCHED_BATCH, 15)}
    finally:
        supervisor.stop_all()
