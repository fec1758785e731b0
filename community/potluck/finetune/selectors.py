# SPDX-License-Identifier: Apache-2.0
"""Read queries of fine-tuning, always scoped to an organization (writes: ``services``
and ``lifecycle``)."""

from __future__ import annotations

from django.db.models import QuerySet

from potluck.accounts.models import Organization
from potluck.finetune.models import FineTuningCheckpoint, FineTuningEvent, FineTuningJob


def list_jobs(org: Organization) -> QuerySet:
    return FineTuningJob.objects.for_org(org)


def get_job(org: Organization, job_id: str) -> FineTuningJob:
    return FineTuningJob.objects.get_in_org(org, job_id,
                                            not_found=f"no fine-tuning job {job_id!r}",
                                            field="fine_tuning_job_id")


def job_events(job: FineTuningJob) -> QuerySet:
    return FineTuningEvent.objects.filter(job=job)


def job_checkpoints(job: FineTuningJob) -> QuerySet:
    return FineTuningCheckpoint.objects.filter(job=job)
