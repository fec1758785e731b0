# SPDX-License-Identifier: Apache-2.0
"""A succeeded job: its adapter (or full model) is registered for its org, a results
file is written, and the replicas of the base model are told to load the adapter."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from django.db import transaction

from potluck.files import services as files
from potluck.files.models import Purpose
from potluck.finetune import lifecycle
from potluck.finetune.models import FineTuningJob, JobStatus, Method
from potluck.registry import services as registry
from potluck.registry.models import RegisteredModel
from potluck.serving.dispatch import request_reconcile
from potluck.serving.models import Replica, ReplicaState

log = logging.getLogger(__name__)
RESULT_COLUMNS = ("step", "train_loss", "valid_loss", "learning_rate", "tokens_per_second")


def fine_tuned_name(job: FineTuningJob) -> str:
    """``ft:<base>:<org>:<suffix>:<id>`` as OpenAI names them (the suffix may be empty)."""
    return f"ft:{job.model_name}:{job.organization.slug}:{job.suffix}:{job.id[6:]}"


def _results_csv(job: FineTuningJob) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(RESULT_COLUMNS)
    for data in job.events.filter(type="metrics").order_by("created_at").values_list(
            "data", flat=True):
        data = data or {}
        writer.writerow([data.get(c, "") for c in RESULT_COLUMNS])
    return out.getvalue().encode()


def complete(job: FineTuningJob, result: dict[str, Any]) -> FineTuningJob:
    """running → succeeded, exactly once; a failure to register fails the job instead."""
    output = str(result.get("output_path") or "")
    name = fine_tuned_name(job)
    try:
        with transaction.atomic():
            locked = FineTuningJob.objects.select_for_update().get(pk=job.pk)
            if locked.status != JobStatus.RUNNING:
                return locked
            model = _register(locked, name, output)
            results = files.write_file(
                locked.organization, purpose=Purpose.FINE_TUNE_RESULTS,
                filename=f"{locked.id}-results.csv", chunks=[_results_csv(locked)])
            trained = result.get("trained_tokens")
            if not lifecycle.succeeded(
                    locked, fine_tuned_model=name, result_model=model,
                    result_files=[results.id],
                    trained_tokens=int(trained) if trained is not None else None):
                raise RuntimeError(f"{locked.id} left the running state while locked")
            if locked.method == Method.LORA:
                _load_into_replicas(model)
    except Exception as exc:
        log.exception("registering the result of %s failed", job.id)
        return lifecycle.fail(job, "registration_failed",
                              f"training succeeded but its result could not be registered: "
                              f"{exc}")
    locked.refresh_from_db()
    return locked


def _register(job: FineTuningJob, name: str, output: str) -> RegisteredModel:
    """Trainer output lives in Potluck's own data dir: registered as the operator would."""
    if job.method == Method.FULL:
        return registry.register_local_model(name, output, organization=job.organization,
                                             created_by=job.created_by, operator=True)
    return registry.register_local_adapter(name, output, base=job.base_model,
                                           organization=job.organization,
                                           created_by=job.created_by, operator=True)


def _load_into_replicas(adapter: RegisteredModel) -> None:
    """The agents of nodes serving the base model load the adapter on their next pass."""
    nodes = (Replica.objects.filter(deployment__model_id=adapter.base_id,
                                    state__in=(ReplicaState.STARTING, ReplicaState.READY))
             .values_list("node__name", flat=True))
    request_reconcile(set(nodes))
