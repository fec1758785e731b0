# SPDX-License-Identifier: Apache-2.0
"""potluck-demo: built offline, deterministic, cached, and a real (if tiny) language model.

Builds use a few steps instead of the default 250, to keep this file under a minute.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from potluck.demo_model import MANIFEST_NAME, DemoModelError, build_demo_model
from potluck.demo_model import build as build_module
from potluck.demo_model.corpus import corpus_documents
from potluck.demo_model.tokenizer import VOCAB_SIZE, train_tokenizer

# Real training runs or model builds: once per CI run, in its community-only phase.
pytestmark = pytest.mark.slow

STEPS = 10
SEED = 7


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(corpus_documents())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_demo_model(tmp_path_factory.mktemp("first") / "potluck-demo", seed=SEED,
                            steps=STEPS, progress=False)


def test_the_tokenizer_has_2048_tokens_and_round_trips_text(tokenizer):
    assert len(tokenizer) == VOCAB_SIZE
    text = 'def f(x):\n\treturn x ** 2  # "squared", naïve ✓\n'
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert len(ids) < len(text.encode())  # it learned merges, not just bytes


def test_the_chat_template_renders_role_tagged_turns(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=True)
    assert rendered == ("<|bos|><|system|>\nBe brief.<|eos|>\n<|user|>\nhi<|eos|>\n"
                        "<|assistant|>\n")
    bare = tokenizer.apply_chat_template(messages[1:], tokenize=False)
    assert not bare.endswith("<|assistant|>\n")


def test_a_build_holds_what_transformers_and_vllm_load(built):
    for name in ("config.json", "generation_config.json", "model.safetensors",
                 "tokenizer.json", "tokenizer_config.json", MANIFEST_NAME):
        assert (built / name).is_file(), name
    config = json.loads((built / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["head_dim"] == 64 and config["vocab_size"] == VOCAB_SIZE
    assert "chat_template" in json.loads((built / "tokenizer_config.json").read_text())
    manifest = json.loads((built / MANIFEST_NAME).read_text())
    assert (manifest["seed"], manifest["steps"]) == (SEED, STEPS)
    assert 3_000_000 < manifest["parameters"] < 4_000_000
    assert not list(built.parent.glob(".*")), "a temporary build directory was left behind"


def test_the_same_seed_gives_byte_identical_weights(built, tmp_path):
    again = build_demo_model(tmp_path / "potluck-demo", seed=SEED, steps=STEPS, progress=False)
    assert (again / "model.safetensors").read_bytes() == (built / "model.safetensors").read_bytes()
    assert (again / "tokenizer.json").read_bytes() == (built / "tokenizer.json").read_bytes()


def test_a_matching_build_is_returned_without_rebuilding(built, monkeypatch):
    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached build was rebuilt")

    manifest = (built / MANIFEST_NAME).read_text()
    weights_mtime = (built / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(build_module, "_build_into", no_rebuild)
    started = time.monotonic()
    assert build_demo_model(built, seed=SEED, steps=STEPS, progress=False) == built
    assert time.monotonic() - started < 5
    assert (built / MANIFEST_NAME).read_text() == manifest
    assert (built / "model.safetensors").stat().st_mtime_ns == weights_mtime
    # Another seed, more steps, or force do not match the cache.
    for kwargs in ({"seed": SEED + 1, "steps": STEPS}, {"seed": SEED, "steps": STEPS + 1},
                   {"seed": SEED, "steps": STEPS, "force": True}):
        with pytest.raises(AssertionError, match="rebuilt"):
            build_demo_model(built, progress=False, **kwargs)
    assert (built / MANIFEST_NAME).read_text() == manifest


def test_the_cli_prints_the_model_directory_last(built):
    from potluck.cli.main import cli

    result = CliRunner().invoke(cli, ["demo-model", "--seed", str(SEED), "--steps",
                                      str(STEPS), "--output", str(built)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(built)


def test_a_directory_that_is_not_a_build_is_never_overwritten(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DemoModelError, match="holds no potluck-demo build"):
        build_demo_model(tmp_path, steps=1, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_training_lowers_the_loss_below_the_initial_model(built):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from potluck.demo_model import train

    tokenizer = AutoTokenizer.from_pretrained(built)
    trained = AutoModelForCausalLM.from_pretrained(built)
    initial = train.init_model(trained.config, SEED)
    text = "\n".join(corpus_documents()[:3])
    batch = tokenizer(text, return_tensors="pt")["input_ids"][:, : train.SEQUENCE_LENGTH]
    with torch.no_grad():
        trained_loss = train.batch_loss(trained.eval(), batch).item()
        initial_loss = train.batch_loss(initial.eval(), batch).item()
    assert initial_loss > 7  # about ln(2048) = 7.6: chance
    assert trained_loss < initial_loss - 0.5
    manifest = json.loads((built / MANIFEST_NAME).read_text())
    assert manifest["final_loss"] < manifest["initial_loss"]
