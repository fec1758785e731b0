# SPDX-License-Identifier: Apache-2.0
"""Fine-tuning jobs: create (checked up front), validate, pause, resume, cancel, and read.

A job moves ``validating_files → queued → running → succeeded | failed | cancelled``;
a queued or running job can be paused (``paused``, holding no training slot) and resumed
(``queued`` again, continuing from its last checkpoint). Every status change is one of
``potluck.finetune.lifecycle``'s; this module decides which the caller asked for.
Requests that can be refused up front (unknown model, a file of the wrong purpose or
another org's, out-of-range hyperparameters) are a 400 at create and leave no job.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from potluck.accounts import quotas
from potluck.accounts.models import ApiKey, Organization, User
from potluck.errors import Conflict, InvalidInput, NotFound
from potluck.files import conf as files_conf
from potluck.files import selectors as file_selectors
from potluck.files.models import FileStatus, Purpose, StoredFile
from potluck.finetune import hyperparameters as hp
from potluck.finetune import lifecycle, selectors
from potluck.finetune.dataset import FineTuneValidator
from potluck.finetune.events import add_event
from potluck.finetune.models import (
    ACTIVE_STATUSES,
    FineTuningJob,
    JobStatus,
    Method,
)
from potluck.openai_api.validation import clean_metadata
from potluck.registry import services as registry
from potluck.registry.models import Kind, RegisteredModel, Source
from potluck.serving.models import Deployment, DeploymentState

log = logging.getLogger(__name__)

CREATE_KEYS = frozenset({"model", "training_file", "validation_file", "hyperparameters",
                         "method", "adapter", "suffix", "seed", "metadata", "integrations"})
_SUFFIX_RE = re.compile(r"^[a-z0-9][a-z0-9-_]{0,39}$")
VALIDATE_TASK = "potluck.finetune.validate"
SCHEDULE_TASK = "potluck.finetune.schedule"


def upload_validator() -> FineTuneValidator:
    """The check of one upload of purpose ``fine-tune``, with the configured limits."""
    return FineTuneValidator(max_lines=settings.FINETUNE_FILE_MAX_LINES,
                             max_line_bytes=files_conf.max_line_bytes())


def _training_file(org: Organization, file_id: Any, field: str) -> StoredFile:
    if not isinstance(file_id, str) or not file_id:
        raise InvalidInput("must be the id of an uploaded file", field=field)
    try:
        stored = file_selectors.get_file(org, file_id)
    except NotFound:
        raise InvalidInput(f"no file {file_id!r} in this organization", field=field) from None
    if stored.purpose != Purpose.FINE_TUNE:
        raise InvalidInput(f"file {file_id} has purpose {stored.purpose!r}; upload it with "
                           "purpose \"fine-tune\"", field=field)
    if stored.status != FileStatus.PROCESSED:
        raise InvalidInput(f"file {file_id} is not a valid fine-tuning dataset "
                           f"({stored.status_details or stored.status})", field=field)
    return stored


def _base_model(org: Organization, name: Any) -> RegisteredModel:
    if not isinstance(name, str) or not name:
        raise InvalidInput("must be the name of a base model", field="model")
    try:
        model = registry.resolve(name, org)
    except NotFound:
        raise InvalidInput(f"no model named {name!r}", field="model") from None
    if model.kind != Kind.BASE:
        raise InvalidInput(f"{name} is an adapter; fine-tune its base model "
                           f"{model.base.name if model.base else ''}".strip(), field="model")
    if model.source != Source.LOCAL or not Path(model.path).is_dir():
        raise InvalidInput(f"{name} has no local weights to train from", field="model")
    return model


def _method_hyperparameters(body: dict[str, Any]) -> Any:
    """OpenAI's two places for hyperparameters: top level, or method.supervised."""
    method = body.get("method")
    if method is None:
        return body.get("hyperparameters")
    if not isinstance(method, dict) or method.get("type", "supervised") != "supervised":
        raise InvalidInput('only the "supervised" method is supported', field="method.type")
    supervised = method.get("supervised") or {}
    if not isinstance(supervised, dict):
        raise InvalidInput("must be an object", field="method.supervised")
    if "hyperparameters" in supervised and body.get("hyperparameters") is not None:
        raise InvalidInput("give hyperparameters in one place only", field="hyperparameters")
    return supervised.get("hyperparameters", body.get("hyperparameters"))


def _weights_bytes(model: RegisteredModel) -> int:
    return sum(p.stat().st_size for p in Path(model.path).glob("*.safetensors"))


def _check_rank_fits_deployment(model: RegisteredModel, rank: int) -> None:
    deployment = Deployment.objects.filter(model=model, state=DeploymentState.ACTIVE).first()
    if deployment is None or not deployment.engine_args.get("enable_lora"):
        return
    limit = deployment.engine_args.get("max_lora_rank", 16)
    if rank > limit:
        raise InvalidInput(f"rank {rank} exceeds max_lora_rank {limit} of the deployment "
                           f"serving {model.name}; the adapter could not be served",
                           field="adapter.rank")


def create_job(org: Organization, body: dict[str, Any], *, api_key: ApiKey | None = None,
               user: User | None = None) -> FineTuningJob:
    unknown = sorted(set(body) - CREATE_KEYS)
    if unknown:
        raise InvalidInput(f"unknown parameter {unknown[0]!r}", field=unknown[0])
    if "model" not in body:
        raise InvalidInput("is required", field="model")
    if "training_file" not in body:
        raise InvalidInput("is required", field="training_file")
    model = _base_model(org, body["model"])
    training = _training_file(org, body["training_file"], "training_file")
    validation_id = body.get("validation_file")
    validation = (_training_file(org, validation_id, "validation_file")
                  if validation_id is not None else None)
    requested = hp.clean_hyperparameters(_method_hyperparameters(body))
    method, adapter = hp.clean_adapter(body.get("adapter"))
    if method == Method.LORA:
        _check_rank_fits_deployment(model, adapter["rank"])
    elif _weights_bytes(model) > settings.FINETUNE_FULL_MAX_BYTES:
        raise InvalidInput(f"the full method is for small models (at most "
                           f"{settings.FINETUNE_FULL_MAX_BYTES // 2**20} MiB of weights); "
                           f"use LoRA for {model.name}", field="adapter.type")
    suffix = body.get("suffix") or ""
    if suffix and (not isinstance(suffix, str) or not _SUFFIX_RE.match(suffix)):
        raise InvalidInput("use up to 40 lowercase letters, digits, - and _", field="suffix")
    seed = body.get("seed")
    if seed is None:
        seed = secrets.randbelow(2**31)
    elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise InvalidInput("must be a whole number from 0 to 2147483647", field="seed")
    if body.get("integrations"):
        raise InvalidInput("integrations are not supported", field="integrations")
    with transaction.atomic():
        _check_concurrency(org, field="model")
        job = FineTuningJob.objects.create(
            organization=org, base_model=model, model_name=model.name,
            training_file_id=training.id, validation_file_id=validation.id if validation else "",
            method=method, hyperparameters=requested, adapter=adapter, suffix=suffix,
            seed=seed, metadata=clean_metadata(body.get("metadata")) or {}, created_by_key=api_key,
            created_by=user)
        add_event(job, f"Validating training file: {training.id}"
                  + (f" and validation file: {validation.id}" if validation else ""))
        _send_on_commit(VALIDATE_TASK, job.id)
    return job


def _check_concurrency(org: Organization, *, field: str) -> None:
    """One more active job (validating, queued or running) must fit the organization's
    quota of concurrent fine-tunes (checked under its row lock; a 429 otherwise)."""
    quotas.lock(org)
    active = FineTuningJob.objects.filter(organization=org,
                                          status__in=ACTIVE_STATUSES).count()
    quotas.check(org, quotas.FINE_TUNES, in_use=active, more=1, field=field)


def _send_on_commit(task: str, *args: Any) -> None:
    from potluck.celery_app import app

    def send() -> None:
        try:
            app.send_task(task, args=args, queue="potluck.jobs", expires=600)
        except Exception:  # beat's periodic pass picks the job up
            log.warning("could not send %s; the periodic pass will", task, exc_info=True)

    transaction.on_commit(send)


def validate_job(job_id: str) -> FineTuningJob | None:
    """validating_files → queued (hyperparameters resolved), or failed naming the problem."""
    with transaction.atomic():
        job = (FineTuningJob.objects.select_for_update().select_related("organization")
               .filter(pk=job_id, status=JobStatus.VALIDATING_FILES).first())
        if job is None:
            return None  # cancelled meanwhile, or already validated
        try:
            training = _training_file(job.organization, job.training_file_id, "training_file")
            if job.validation_file_id:
                _training_file(job.organization, job.validation_file_id, "validation_file")
        except InvalidInput as exc:
            return lifecycle.fail(job, "invalid_training_file", exc.message, param=exc.field)
        resolved = hp.resolve(job.hyperparameters, examples=training.line_count,
                              method=job.method, weights_bytes=_weights_bytes(job.base_model))
        if lifecycle.validated(job, training_examples=training.line_count,
                               hyperparameters=resolved):
            _send_on_commit(SCHEDULE_TASK)
    job.refresh_from_db()
    return job


def validate_pending() -> int:
    """Beat's safety net: validate jobs whose validation task was lost."""
    stale = timezone.now() - timedelta(seconds=30)
    ids = list(FineTuningJob.objects.filter(status=JobStatus.VALIDATING_FILES,
                                            created_at__lt=stale).values_list("pk", flat=True))
    for job_id in ids:
        validate_job(job_id)
    return len(ids)


def cancel_job(org: Organization, job_id: str) -> FineTuningJob:
    """Not started yet, or paused: cancelled at once. Running: its trainer is asked to stop
    (the agent sends SIGTERM; it stops within a step) and the job turns cancelled then."""
    job = selectors.get_job(org, job_id)
    with transaction.atomic():
        if lifecycle.cancel(job):
            pass  # nothing ran
        elif lifecycle.request_cancel(job):
            _wake_node(job)
        elif job.is_terminal:
            raise Conflict(f"job {job.id} has already {job.status}", field="fine_tuning_job_id")
    job.refresh_from_db()
    return job


def pause_job(org: Organization, job_id: str) -> FineTuningJob:
    """Queued: paused at once. Running: its trainer is asked to checkpoint and exit (the
    agent sends SIGUSR1; it does so at the end of the current step) and the job turns
    paused then. Asking again while that happens changes nothing; any other state is a
    409."""
    job = selectors.get_job(org, job_id)
    with transaction.atomic():
        if lifecycle.pause(job):
            pass  # nothing ran
        elif lifecycle.request_pause(job):
            _wake_node(job)
        else:
            job.refresh_from_db()
            if job.status == JobStatus.RUNNING and job.cancel_requested:
                raise Conflict(f"job {job.id} is being cancelled",
                               field="fine_tuning_job_id")
            if job.status != JobStatus.RUNNING:  # running with a pause asked: as asked
                raise Conflict(_cannot("pause", job), field="fine_tuning_job_id")
    job.refresh_from_db()
    return job


def resume_job(org: Organization, job_id: str) -> FineTuningJob:
    """Paused → queued: the scheduler starts it on a node with a free slot, from its last
    checkpoint (or from the start when it had none). Any other state is a 409."""
    job = selectors.get_job(org, job_id)
    with transaction.atomic():
        if job.status == JobStatus.PAUSED:
            _check_concurrency(org, field="fine_tuning_job_id")
        if not lifecycle.resume(job):
            job.refresh_from_db()
            raise Conflict(_cannot("resume", job), field="fine_tuning_job_id")
        _send_on_commit(SCHEDULE_TASK)
    job.refresh_from_db()
    return job


def _cannot(action: str, job: FineTuningJob) -> str:
    if job.is_terminal:
        return f"job {job.id} has already {job.status}"
    if action == "pause" and job.status == JobStatus.PAUSED:
        return f"job {job.id} is already paused"
    if action == "pause":
        return f"job {job.id} is {job.status}; it can be paused once it is queued"
    return f"job {job.id} is {job.status}, not paused"


def _wake_node(job: FineTuningJob) -> None:
    """Nudge the agent of the node the job runs on now (it also looks every second)."""
    from potluck.serving.dispatch import request_reconcile

    node = FineTuningJob.objects.filter(pk=job.pk).values_list("node", flat=True).first()
    if node:
        request_reconcile([node])
