# SPDX-License-Identifier: Apache-2.0
"""Queued jobs go to live nodes with a free training slot, oldest job first.

Runs as a control task (kicked when a job is queued, and by beat). Assigning a job
makes it ``running`` on that node; the node's agent starts the trainer within a second.
Jobs of nodes that were lost are requeued (or failed after too many attempts).
"""

from __future__ import annotations

import logging
from collections import Counter

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from potluck.finetune import lifecycle
from potluck.finetune.models import FineTuningJob, JobStatus
from potluck.nodes.models import Node, NodeState
from potluck.nodes.services import live_node_names
from potluck.serving.dispatch import request_reconcile

log = logging.getLogger(__name__)


def schedule() -> list[str]:
    """Assign queued jobs; returns the ids assigned."""
    requeue_jobs_of_lost_nodes()
    live = sorted(live_node_names())
    if not live:
        return []
    assigned: list[str] = []
    with transaction.atomic():
        running = Counter(dict(
            FineTuningJob.objects.filter(status=JobStatus.RUNNING, node__in=live)
            .values_list("node").annotate(n=Count("id")).values_list("node", "n")))
        queued = (FineTuningJob.objects.select_for_update(skip_locked=True)
                  .filter(status=JobStatus.QUEUED).order_by("created_at"))
        for job in queued:
            free = [n for n in live if running[n] < settings.FINETUNE_SLOTS_PER_NODE]
            if not free:
                break
            node = min(free, key=lambda n: (running[n], n))
            if lifecycle.start_on(job, node):
                running[node] += 1
                assigned.append(job.id)
                request_reconcile([node])
    return assigned


def requeue_jobs_of_lost_nodes() -> list[str]:
    """A running job whose node is lost resumes elsewhere (from its last checkpoint when
    that node can reach it), is cancelled or paused if that was asked, or fails after
    ``FINETUNE_MAX_ATTEMPTS``."""
    lost = set(Node.objects.filter(state__in=(NodeState.LOST, NodeState.OFFLINE))
               .values_list("name", flat=True))
    if not lost:
        return []
    moved: list[str] = []
    with transaction.atomic():
        for job in (FineTuningJob.objects.select_for_update(skip_locked=True)
                    .filter(status=JobStatus.RUNNING, node__in=lost)):
            if job.cancel_requested:
                done = lifecycle.cancelled_while_running(
                    job, event=f"Job cancelled (node {job.node} was lost while stopping)")
            elif job.pause_requested:
                done = lifecycle.paused_off_node(
                    job, event=f"Job paused (node {job.node} was lost while pausing); it "
                               "resumes from its last checkpoint", level="warn")
            elif job.attempts >= settings.FINETUNE_MAX_ATTEMPTS:
                done = lifecycle.fail(
                    job, "node_lost", f"node {job.node} was lost and the job had already run "
                                      f"{job.attempts} times").status == JobStatus.FAILED
            else:
                done = lifecycle.requeued(
                    job, event=f"Node {job.node} was lost; the job is queued again and "
                               "resumes from its last checkpoint")
            if not done:
                continue
            moved.append(job.id)
    return moved
