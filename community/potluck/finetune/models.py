# SPDX-License-Identifier: Apache-2.0
"""Fine-tuning jobs, their events and checkpoints, in OpenAI's shapes and states."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from potluck.ids import new_id
from potluck.tenancy import OrgOwnedModel


def new_job_id() -> str:
    return new_id("ftjob-")


def new_event_id() -> str:
    return new_id("ftevent-")


def new_checkpoint_id() -> str:
    return new_id("ftckpt-")


class JobStatus(models.TextChoices):
    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
# A paused job is neither: it holds no training slot and waits for a resume (or cancel).
ACTIVE_STATUSES = (JobStatus.VALIDATING_FILES, JobStatus.QUEUED, JobStatus.RUNNING)


class Method(models.TextChoices):
    LORA = "lora"
    FULL = "full"


class FineTuningJob(OrgOwnedModel):
    """A fine-tune of a base model on an uploaded dataset.

    ``hyperparameters`` holds what the caller asked for ("auto" or numbers) until the
    training file is validated; from then on the resolved numbers. The trainer runs on
    ``node`` as a subprocess of its agent (``pid``), writing into ``output_dir``.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_job_id, editable=False)
    base_model = models.ForeignKey("registry.RegisteredModel", on_delete=models.PROTECT,
                                   related_name="+")
    model_name = models.CharField(max_length=200)  # the base model's name as requested
    training_file_id = models.CharField(max_length=40)
    validation_file_id = models.CharField(max_length=40, blank=True)
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.LORA)
    hyperparameters = models.JSONField(default=dict)
    adapter = models.JSONField(default=dict)  # rank, alpha, dropout, target_modules
    suffix = models.CharField(max_length=64, blank=True)
    seed = models.BigIntegerField()
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=24, choices=JobStatus.choices,
                              default=JobStatus.VALIDATING_FILES, db_index=True)
    error = models.JSONField(null=True, blank=True)  # {code, message, param}
    fine_tuned_model = models.CharField(max_length=255, blank=True)
    result_model = models.ForeignKey("registry.RegisteredModel", null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    result_files = models.JSONField(default=list, blank=True)
    training_examples = models.PositiveIntegerField(default=0)
    trained_tokens = models.BigIntegerField(null=True, blank=True)
    estimated_finish = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Where it runs.
    node = models.CharField(max_length=128, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    output_dir = models.CharField(max_length=1024, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # Running: the trainer is asked to checkpoint and exit; the job then turns paused.
    pause_requested = models.BooleanField(default=False)
    last_event_seq = models.BigIntegerField(default=0)  # the trainer's events ingested
    created_by_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey("accounts.User", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]
        constraints = [
            models.CheckConstraint(condition=~Q(status="running") | ~Q(node=""),
                                   name="running_job_has_node"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class FineTuningEvent(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_event_id,
                          editable=False)
    job = models.ForeignKey(FineTuningJob, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, default="info")
    type = models.CharField(max_length=16, default="message")  # message | metrics
    message = models.TextField()
    data = models.JSONField(null=True, blank=True)
    # The trainer's own sequence number: ingesting its events twice adds nothing.
    trainer_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["job", "created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["job", "trainer_seq"], name="one_event_per_seq",
                                    condition=Q(trainer_seq__isnull=False)),
        ]


class FineTuningCheckpoint(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_checkpoint_id,
                          editable=False)
    job = models.ForeignKey(FineTuningJob, on_delete=models.CASCADE,
                            related_name="checkpoints")
    step_number = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict)
    path = models.CharField(max_length=1024)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "step_number"],
                                               name="one_checkpoint_per_step")]
