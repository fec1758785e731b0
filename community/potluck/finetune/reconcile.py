# SPDX-License-Identifier: Apache-2.0
"""The node agent's trainer reconcile loop: make this node's trainer processes match its
``running`` fine-tuning jobs (the counterpart of ``potluck.serving.reconcile``).

Each ``running`` job assigned to this node gets a trainer process
(``python -m potluck.finetune.trainer SPEC``) in its own session, so it outlives an
agent restart; a new agent adopts it (found by its command line). The trainer writes
``events.jsonl``, checkpoints and ``result.json`` into the job's directory; this loop
has the events ingested into Postgres, turns cancellation into SIGTERM and a pause into
SIGUSR1 (checkpoint, then exit), and on exit has the job finished or paused or, when the
trainer died without a result, restarts it from its last checkpoint (or pauses it
there, if a pause was asked).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from potluck.child_processes import signal_group
from potluck.files import selectors as file_selectors
from potluck.files import services as files
from potluck.finetune import completion, lifecycle
from potluck.finetune.events import add_event
from potluck.finetune.models import FineTuningJob, JobStatus
from potluck.finetune.trainer_events import TrainerEventReader
from potluck.nodes import isolation
from potluck.serving import cpu_share

log = logging.getLogger(__name__)
TRAINER_MODULE = "potluck.finetune.trainer"
EXIT_FAILED, EXIT_CANCELLED, EXIT_PAUSED = 2, 3, 4
RESULT_FILE = "result.json"


def job_dir(job_id: str) -> Path:
    return settings.DATA_DIR / "finetune" / job_id


def find_trainer(job_id: str) -> psutil.Process | None:
    """A live trainer process of this job on this host (started by any agent)."""
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        argv = proc.info["cmdline"] or []
        if (proc.info["status"] != psutil.STATUS_ZOMBIE and TRAINER_MODULE in argv
                and any(job_id in arg for arg in argv)):
            return proc
    return None


def latest_checkpoint(directory: Path) -> Path | None:
    found = sorted(p for p in (directory / "checkpoints").glob("step-*") if p.is_dir())
    return found[-1] if found else None


class TrainerReconciler:
    """What one agent knows about its node's trainers between passes."""

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self.lock = threading.Lock()
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.events = TrainerEventReader()
        self.terminating: dict[str, float] = {}  # job id → when SIGTERM was sent
        self.pausing: dict[str, float] = {}  # job id → when SIGUSR1 was sent

    # -- one pass ---------------------------------------------------------------------

    def reconcile_once(self) -> None:
        with self.lock:
            mine = list(FineTuningJob.objects.filter(node=self.node_name,
                                                     status=JobStatus.RUNNING))
            for job in mine:
                try:
                    self._reconcile(job)
                except Exception:  # one bad job must not stall the others
                    log.exception("reconciling fine-tuning job %s failed", job.id)
            self._reap({job.id for job in mine})

    def stop_all(self) -> None:
        """Agent shutdown: kill this node's trainers (checkpoints are atomic); their jobs
        resume from the last checkpoint when an agent runs them again."""
        with self.lock:
            for job_id, child in list(self.children.items()):
                signal_group(child.pid, signal.SIGKILL)
                child.wait(timeout=30)
                log.info("stopped the trainer of %s for shutdown", job_id)
            self.children.clear()

    def _reap(self, running: set[str]) -> None:
        """Trainers of jobs no longer running here (finished elsewhere, requeued after a
        partition) are stopped; exited children are reaped."""
        for job_id, child in list(self.children.items()):
            if job_id not in running:
                if child.poll() is None:
                    log.warning("stopping the trainer of %s: the job no longer runs here",
                                job_id)
                    signal_group(child.pid, signal.SIGKILL)
                    child.wait(timeout=30)
                del self.children[job_id]
                self.events.forget(job_id)
                self.terminating.pop(job_id, None)
                self.pausing.pop(job_id, None)

    def _reconcile(self, job: FineTuningJob) -> None:
        directory = Path(job.output_dir) if job.output_dir else job_dir(job.id)
        alive = self._alive(job)
        if job.output_dir:
            self.events.ingest(job, directory)
        if alive:
            if job.cancel_requested:
                self._terminate(job, alive)
            elif job.pause_requested:
                self._pause(job, alive)
            return
        code = self._exit_code(job)
        result = _read_result(directory)
        if result is not None and result.get("status") == "paused" and not job.pause_requested:
            result = None  # an earlier pause's, left by an agent that died before removing it
        if result is not None:
            self._finish(job, result, directory)
        elif job.cancel_requested:
            self._cancelled(job)
        elif job.pause_requested:  # died, killed past the grace, or never started
            self._paused(job, directory, clean=False)
        elif job.pid is None:
            self._start(job, directory, resume_from=latest_checkpoint(directory))
        else:
            self._interrupted(job, directory, code)

    # -- process ----------------------------------------------------------------------

    def _alive(self, job: FineTuningJob) -> psutil.Process | subprocess.Popen[bytes] | None:
        child = self.children.get(job.id)
        if child is not None:
            return child if child.poll() is None else None
        proc = find_trainer(job.id)
        if proc is not None:
            if job.pid != proc.pid:
                FineTuningJob.objects.filter(pk=job.pk).update(pid=proc.pid)
            log.info("adopted the trainer of %s (pid %s)", job.id, proc.pid)
        return proc

    def _exit_code(self, job: FineTuningJob) -> int | None:
        child = self.children.pop(job.id, None)
        return child.poll() if child is not None else None

    def _terminate(self, job: FineTuningJob, proc: Any) -> None:
        """SIGTERM once; the trainer stops after its step and exits cancelled."""
        self._signal(job, proc, signal.SIGTERM, self.terminating,
                     settings.FINETUNE_CANCEL_GRACE_SECONDS)

    def _pause(self, job: FineTuningJob, proc: Any) -> None:
        """SIGUSR1 once; the trainer checkpoints at the end of its step and exits paused."""
        self._signal(job, proc, signal.SIGUSR1, self.pausing,
                     settings.FINETUNE_PAUSE_GRACE_SECONDS)

    def _signal(self, job: FineTuningJob, proc: Any, signum: int, sent: dict[str, float],
                grace: float) -> None:
        """Send ``signum`` once (``sent`` remembers when); past ``grace`` seconds with the
        trainer still alive, kill its process group."""
        since = sent.get(job.id)
        if since is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signum)
            sent[job.id] = time.monotonic()
        elif time.monotonic() - since > grace:
            log.warning("the trainer of %s did not stop %.0f s after %s; killing it",
                        job.id, grace, signal.Signals(signum).name)
            signal_group(proc.pid, signal.SIGKILL)

    def _start(self, job: FineTuningJob, directory: Path, *, resume_from: Path | None) -> None:
        from potluck.finetune.trainer.spec import TrainingSpec

        self.terminating.pop(job.id, None)
        self.pausing.pop(job.id, None)
        directory.mkdir(parents=True, exist_ok=True)
        data = directory / "data"
        data.mkdir(exist_ok=True)
        training = _copy_dataset(job, job.training_file_id, data / "train.jsonl")
        validation = (_copy_dataset(job, job.validation_file_id, data / "validation.jsonl")
                      if job.validation_file_id else None)
        h = job.hyperparameters
        lora = job.adapter or {}
        spec = TrainingSpec(
            job_id=job.id, base_model_path=job.base_model.path, training_file=str(training),
            validation_file=str(validation) if validation else None,
            output_dir=str(directory), method=job.method, n_epochs=h["n_epochs"],
            batch_size=h["batch_size"], learning_rate=h["learning_rate"],
            lora_rank=lora.get("rank", 8), lora_alpha=lora.get("alpha", 16),
            lora_dropout=lora.get("dropout", 0.0), target_modules=lora.get("target_modules"),
            seed=job.seed, max_seq_len=min(settings.FINETUNE_MAX_SEQ_LEN,
                                           job.base_model.context_length or 2048),
            checkpoint_every_steps=settings.FINETUNE_CHECKPOINT_EVERY_STEPS,
            eval_every_steps=0,
            resume_from=str(resume_from) if resume_from else None, torch_threads=None)
        spec_path = directory / "spec.json"
        spec_path.write_text(spec.to_json())
        share = cpu_share.trainer_share()  # a bad setting fails here, before the trainer
        # The trainer runs as the engine user, with only the environment it needs; it
        # writes its checkpoints, events and result into the folder it is handed.
        isolation.hand_over(directory)
        isolation.ensure_traversable(Path(job.base_model.path))
        log_handle = (directory / "trainer.log").open("ab")
        try:
            child = isolation.start([sys.executable, "-m", TRAINER_MODULE, str(spec_path)],
                                    env=isolation.engine_env(), output=log_handle,
                                    cwd=directory)
        finally:
            log_handle.close()
        cpu_share.apply_configured(child.pid, share)
        moved = FineTuningJob.objects.filter(
            pk=job.pk, status=JobStatus.RUNNING, node=self.node_name,
            pause_requested=False).update(
            pid=child.pid, output_dir=str(directory), attempts=job.attempts + 1,
            updated_at=timezone.now())
        if not moved:  # cancelled, paused or moved away meanwhile
            signal_group(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
            return
        self.children[job.id] = child
        log.info("started the trainer of %s (pid %s%s)", job.id, child.pid,
                 f", resuming from {resume_from.name}" if resume_from else "")

    def _interrupted(self, job: FineTuningJob, directory: Path, code: int | None) -> None:
        """The trainer died without a result (killed, crashed, or its node restarted)."""
        how = (f"exit code {code}" if code is not None and code >= 0
               else f"signal {-code}" if code is not None else "its process is gone")
        if job.attempts >= settings.FINETUNE_MAX_ATTEMPTS:
            tail = _log_tail(directory / "trainer.log")
            lifecycle.fail(job, "trainer_died", f"the trainer stopped unexpectedly ({how}) "
                           f"{job.attempts} times; last log lines: {tail}")
            return
        checkpoint = latest_checkpoint(directory)
        where = (f"resuming from its checkpoint at step {int(checkpoint.name[5:])}"
                 if checkpoint else "starting over (no checkpoint yet)")
        add_event(job, f"The trainer stopped unexpectedly ({how}); {where} "
                  f"(attempt {job.attempts + 1} of {settings.FINETUNE_MAX_ATTEMPTS})",
                  level="warn")
        self._start(job, directory, resume_from=checkpoint)

    # -- endings ----------------------------------------------------------------------

    def _finish(self, job: FineTuningJob, result: dict[str, Any], directory: Path) -> None:
        self.events.ingest(job, directory)
        status = result.get("status")
        if status == "succeeded":
            completion.complete(job, result)
        elif status == "cancelled":
            self._cancelled(job)
        elif status == "paused":
            # A pid: this assignment's trainer paused itself. None: a result left over from
            # an earlier pause, and no trainer was started since.
            self._paused(job, directory, clean=job.pid is not None)
        else:
            error = result.get("error") or {}
            lifecycle.fail(job, str(error.get("code") or "training_failed"),
                           str(error.get("message") or "the trainer failed without saying why"))

    def _cancelled(self, job: FineTuningJob) -> None:
        lifecycle.cancelled_while_running(job)

    def _paused(self, job: FineTuningJob, directory: Path, *, clean: bool) -> None:
        """running → paused at its last checkpoint, off this node (its slot is free). A
        trainer that paused itself (``clean``) used no attempt; a cancel asked meanwhile
        wins."""
        self.pausing.pop(job.id, None)
        self.terminating.pop(job.id, None)
        checkpoint = latest_checkpoint(directory)
        step = int(checkpoint.name[5:]) if checkpoint else 0
        moved = lifecycle.paused_off_node(
            job, node=self.node_name, refund_attempt=clean, data={"step": step},
            event=f"Job paused at step {step}" if checkpoint else
                  "Job paused before its first checkpoint; it starts over when resumed")
        if moved:
            # A resumed run must not take this result for its own.
            with contextlib.suppress(FileNotFoundError):
                (directory / RESULT_FILE).unlink()
        elif FineTuningJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
            self._cancelled(job)


def _copy_dataset(job: FineTuningJob, file_id: str, target: Path) -> Path:
    """The dataset as it was uploaded, copied next to the trainer (once per job)."""
    if target.exists():
        return target
    stored = file_selectors.get_file(job.organization, file_id)
    partial = target.with_suffix(".partial")
    with files.open_file(stored) as source, partial.open("wb") as sink:
        shutil.copyfileobj(source, sink, 1024 * 1024)
    partial.replace(target)
    return target


def _read_result(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"


class TrainerReconcileLoop(threading.Thread):
    """Reconciles this node's trainers every ``FINETUNE_RECONCILE_SECONDS``."""

    def __init__(self, node_name: str) -> None:
        super().__init__(name="finetune-reconcile", daemon=True)
        self.reconciler = TrainerReconciler(node_name)
        self.stopped = threading.Event()
        self.wake = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                close_old_connections()
                self.reconciler.reconcile_once()
            except Exception:
                log.exception("fine-tuning reconcile pass failed")
            self.wake.wait(settings.FINETUNE_RECONCILE_SECONDS)
            self.wake.clear()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        self.join(timeout=30)
        self.reconciler.stop_all()
