# SPDX-License-Identifier: Apache-2.0
"""The node agent: a Celery worker on the host's own queue, plus its heartbeat.

It uses a thread pool: worker processes are never recycled, so anything the agent
starts (vLLM servers, later) is not tied to a pool child's life.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections

from potluck.celery_app import app
from potluck.finetune.reconcile import TrainerReconcileLoop
from potluck.inference.usage_writer import recover_journals
from potluck.nodes import isolation, resources, services
from potluck.redis_client import get_redis
from potluck.serving.cordon import uncordon_node
from potluck.serving.reconcile import ReconcileLoop

log = logging.getLogger(__name__)
CONTROL_QUEUE = "potluck.control"
# Long, durable jobs (batches): consumed beside the control queue, so one long job never
# holds up the scheduler's short tasks for long (the pool has several threads).
JOBS_QUEUE = "potluck.jobs"


class Heartbeat(threading.Thread):
    def __init__(self, name: str) -> None:
        super().__init__(name="potluck-heartbeat", daemon=True)
        self.node_name = name
        self.stopped = threading.Event()
        self.resources = resources.probe()

    def beat(self) -> None:
        try:
            services.heartbeat(self.node_name, self.resources)
        except Exception:  # a Redis or DB blip must not kill the agent; next beat retries
            log.exception("heartbeat failed")
        finally:
            close_old_connections()
        try:  # usage of batch runs (or web workers) of this host that died before shipping
            moved = recover_journals(settings.DATA_DIR / "spool", get_redis())
            if moved:
                log.info("shipped %d usage records left by writers that are gone", moved)
        except Exception:
            log.exception("usage journal recovery failed")

    def run(self) -> None:
        while not self.stopped.wait(settings.NODE_HEARTBEAT_SECONDS):
            self.beat()

    def stop(self) -> None:
        self.stopped.set()
        # A beat in flight would make the node alive again after its sign-off.
        if self.is_alive():
            self.join(timeout=10)
        try:
            services.sign_off(self.node_name)
        except Exception:
            log.exception("could not sign off node %s", self.node_name)


def run(name: str, *, control: bool, concurrency: int = 4, loglevel: str = "INFO") -> None:
    isolation.engine_user()  # a misconfigured engine user stops the agent here, loudly
    queues = [services.queue_for(name)] + ([CONTROL_QUEUE, JOBS_QUEUE] if control else [])
    heartbeat = Heartbeat(name)
    heartbeat.beat()  # be visible before the first task can arrive
    heartbeat.start()
    try:
        uncordon_node(name)  # a starting agent takes replicas again
    except Exception:  # Redis is down: the cordon expires on its own
        log.exception("could not lift the cordon of node %s", name)
    # Its first pass adopts the replicas that an earlier agent of this node started.
    reconciler = ReconcileLoop(name)
    reconciler.start()
    # Adopts trainers an earlier agent started; resumes jobs whose trainer died.
    trainers = TrainerReconcileLoop(name)
    trainers.start()
    log.info("node agent %s consuming %s", name, ", ".join(queues))
    worker = app.Worker(
        hostname=f"node@{name}", queues=queues, pool="threads", concurrency=concurrency,
        loglevel=loglevel, without_gossip=True, without_mingle=True,
    )
    try:
        worker.start()
    finally:
        reconciler.stop()  # the replicas keep running: the next agent adopts them
        trainers.stop()  # trainers stop; their jobs resume from the last checkpoint
        heartbeat.stop()
