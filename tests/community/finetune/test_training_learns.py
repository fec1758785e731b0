# SPDX-License-Identifier: Apache-2.0
"""LoRA and full fine-tuning on the demo model learn what they are taught; their outputs
are complete model or adapter directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trainer_runs import FULL_LR, PHRASE, greedy_answer, make_spec, ran, result_of, run_trainer

# Real training runs or model builds: once per CI run, in its community-only phase.
pytestmark = pytest.mark.slow


def test_a_lora_adapter_learns_the_phrase_and_the_base_model_does_not(
        lora_run, demo_model_dir, demo_tokenizer):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    final = Path(lora_run["result"]["output_path"])
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {
        p.name for p in final.iterdir()}
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"}
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    assert PHRASE not in greedy_answer(base, demo_tokenizer)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(demo_model_dir),
                                      final)
    assert greedy_answer(tuned, demo_tokenizer).startswith(PHRASE)


def test_full_fine_tuning_writes_a_complete_model_dir(workdir, demo_model_dir, demo_tokenizer):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = make_spec(workdir, demo_model_dir, "full", method="full", n_epochs=15,
                     learning_rate=FULL_LR)
    completed = run_trainer(spec)
    assert completed.returncode == 0, ran(completed, 0)
    final = Path(result_of(spec)["output_path"])
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json"} <= {p.name for p in final.iterdir()}
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert tokenizer.chat_template == demo_tokenizer.chat_template
    model = AutoModelForCausalLM.from_pretrained(final)
    assert model.dtype == torch.float32
    before = load_file(demo_model_dir / "model.safetensors")
    after = load_file(final / "model.safetensors")
    assert before.keys() == after.keys()
    assert not torch.equal(before["model.layers.0.mlp.up_proj.weight"],
                           after["model.layers.0.mlp.up_proj.weight"])
    assert greedy_answer(model, tokenizer).startswith(PHRASE)
    checkpoints = sorted(p.name for p in (final.parent / "checkpoints").iterdir())
    assert checkpoints == ["step-000020", "step-000040", "step-000060"]
    assert "model.safetensors" in {p.name for p in (final.parent / "checkpoints" /
                                                    checkpoints[0]).iterdir()}
