# SPDX-License-Identifier: Apache-2.0
"""A bad dataset, base model or spec fails the run at once (exit 2) with a reason that
names what is wrong, before any model is loaded; the trainer starts light."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from trainer_runs import events_of, make_spec, phrase_example, ran, result_of, run_trainer

# Real training runs or model builds: once per CI run, in its community-only phase.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("line", "reason"), [
    ('{"messages": [{"role": "user", "content": "hi"}', "line 3: not valid JSON"),
    ('{"messages": [{"role": "user", "content": "hi"}]}',
     'line 3: the last message (messages[0]) must have role "assistant", got "user"'),
    ('{"messages": [{"role": "wizard", "content": "hi"}]}', "line 3: messages[0].role must"),
    # Valid for the upload, but the demo model's template ignores tools: refused, by line.
    (json.dumps({**phrase_example(), "tools": [
        {"type": "function", "function": {"name": "lookup"}}]}),
     "line 3: the base model's chat template does not render \"tools\""),
])
def test_a_malformed_dataset_fails_with_exit_2_naming_the_line(workdir, demo_model_dir,
                                                                line, reason):
    name = f"bad-data-{abs(hash(line))}"
    bad = workdir / f"{name}.jsonl"
    bad.write_text(json.dumps(phrase_example()) + "\n\n" + line + "\n")
    spec = make_spec(workdir, demo_model_dir, name, training_file=str(bad))
    completed = run_trainer(spec)
    assert completed.returncode == 2, ran(completed, 2)
    result = result_of(spec)
    assert result["status"] == "failed" and result["steps"] == 0
    assert result["error"]["code"] == "invalid_training_file"
    assert result["error"]["message"].startswith(reason)
    assert events_of(spec)[-1]["level"] == "error"


def test_an_unusable_base_model_fails_with_exit_2(workdir, demo_model_dir):
    empty = workdir / "not-a-model"
    empty.mkdir()
    for base in (workdir / "no-such-dir", empty):
        spec = make_spec(workdir, demo_model_dir, f"bad-base-{base.name}",
                         base_model_path=str(base))
        completed = run_trainer(spec)
        assert completed.returncode == 2, ran(completed, 2)
        error = result_of(spec)["error"]
        assert error == {"code": "invalid_base_model",
                         "message": f"{base} is not a model directory (no config.json)"}


def test_an_invalid_spec_fails_with_exit_2_into_its_output_dir(workdir, demo_model_dir):
    spec = make_spec(workdir, demo_model_dir, "bad-spec", method="qlora")
    completed = run_trainer(spec)
    assert completed.returncode == 2, ran(completed, 2)
    assert result_of(spec)["error"] == {
        "code": "invalid_spec", "message": "method must be one of lora, full, got 'qlora'"}


def test_a_spec_round_trips_through_json_and_names_a_bad_field(workdir):
    from potluck.finetune.trainer import TrainingSpec
    from potluck.finetune.trainer.failures import TrainingFailed

    fields = make_spec(workdir, workdir, "spec-only", target_modules=["q_proj", "v_proj"],
                       learning_rate=1)
    spec = TrainingSpec.from_dict(fields)
    assert spec.learning_rate == 1.0 and spec.lora_rank == 8 and spec.resume_from is None
    assert TrainingSpec.from_json(spec.to_json()) == spec
    direct = TrainingSpec(**{**fields, "target_modules": ("q_proj", "v_proj"),
                             "learning_rate": 1})
    assert direct == spec and isinstance(direct.learning_rate, float)
    for change, message in [({"batch_size": True}, "batch_size must be an integer"),
                            ({"n_epochs": 0}, "n_epochs must be at least 1, got 0"),
                            ({"warmup_ratio": 1.5}, "warmup_ratio must be a number in [0, 1)"),
                            ({"target_modules": []}, "target_modules must be a non-empty"),
                            ({"epochs": 3}, "unknown field(s): epochs")]:
        with pytest.raises(TrainingFailed) as failure:
            TrainingSpec.from_dict({**fields, **change})
        assert failure.value.code == "invalid_spec"
        assert failure.value.message.startswith(message)
    with pytest.raises(TrainingFailed, match="missing field"):
        TrainingSpec.from_dict({k: v for k, v in fields.items() if k != "seed"})


def test_importing_the_trainer_loads_neither_torch_nor_django_db_nor_redis():
    code = ("import sys, potluck.finetune.trainer.runner as r; "
            "print(sorted(m for m in ('django.db', 'redis', 'torch') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env={**os.environ, "DATABASE_URL": "", "REDIS_URL": ""})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
