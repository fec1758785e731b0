# SPDX-License-Identifier: Apache-2.0
"""A real trainer, started by a real node agent running as root, trains as the
unprivileged engine user with none of the agent's secrets, in the job folder it is handed
(issue 19). The agent runs on a Python every user can run (``python_for_all_users``)."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import live_agent
import psutil
import pytest
from ft_data import chat_lines
from waiting import wait_for

from potluck.finetune import services
from potluck.finetune.models import FineTuningJob, JobStatus
from potluck.nodes import isolation
from potluck.nodes import services as node_services

pytestmark = pytest.mark.slow
NODE = "isolated-trainer-node"
AGENT_SECRETS = {"AWS_SECRET_ACCESS_KEY": "aws-secret", "STRIPE_API_KEY": "sk_live_x",
                 "HF_TOKEN": "hf_x"}


@pytest.fixture
def shared_data_dir(settings, file_storage) -> Iterator[Path]:
    """A data dir other users may traverse (pytest's tmp dirs are root-only), for the
    uploads of this process and the agent alike."""
    folder = Path(tempfile.mkdtemp(prefix="potluck-isolated-ft-"))
    folder.chmod(0o711)
    settings.DATA_DIR = folder
    settings.FILE_STORAGE_ROOT = str(folder / "files")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_trainer_runs_as_the_engine_user_without_the_agents_secrets(
        org, live_env, reaper, redis_conn, shared_data_dir, upload, demo_model,
        python_for_all_users):
    assert os.geteuid() == 0, "this test runs as root, as CI runs it"
    python, python_env = python_for_all_users
    env = {**live_env, **python_env, **AGENT_SECRETS, "POTLUCK_DATA_DIR": str(shared_data_dir),
           "POTLUCK_ENGINE_USER": "auto", "POTLUCK_NODE_HEARTBEAT_SECONDS": "1",
           "POTLUCK_SERVING_RECONCILE_SECONDS": "1", "POTLUCK_FINETUNE_CHECKPOINT_EVERY": "4"}
    training = upload(org, chat_lines(16))
    job = services.create_job(org, {"model": "potluck-demo", "training_file": training.id,
                                    "hyperparameters": {"n_epochs": 1, "batch_size": 2}})
    agent = live_agent.Agent(env, shared_data_dir / "agent.log", reaper, NODE, python=python)
    try:
        wait_for(lambda: NODE in node_services.live_node_names(), 60, "the agent's heartbeat")
        running = wait_for(lambda: FineTuningJob.objects.filter(
            pk=job.id, status=JobStatus.RUNNING, pid__isnull=False).first(), 120,
            "the job to run")
        trainer = psutil.Process(running.pid)
        engine = pwd.getpwnam(isolation.ENGINE_SYSTEM_USER)
        assert trainer.uids().effective == engine.pw_uid
        assert not set(AGENT_SECRETS) & set(trainer.environ())
        assert not {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} & set(trainer.environ())
        wait_for(lambda: FineTuningJob.objects.get(pk=job.id).status in (
            JobStatus.SUCCEEDED, JobStatus.FAILED), 300, "the job to finish")
    except AssertionError:
        print(agent.output()[-4000:])
        raise

    done = FineTuningJob.objects.get(pk=job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    written = Path(done.output_dir) / "result.json"
    assert written.stat().st_uid == engine.pw_uid  # the trainer wrote its own folder
    assert done.fine_tuned_model
    assert agent.stop() == 0
