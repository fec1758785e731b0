# SPDX-License-Identifier: Apache-2.0
"""Registering a local directory checks that vLLM could load it, and says why not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings
from safetensors.numpy import save_file

from potluck.errors import Conflict, Forbidden
from potluck.registry import services
from potluck.registry.models import RegisteredModel
from potluck.registry.validation import InvalidModelDirectory

pytestmark = pytest.mark.django_db


def write_model(directory: Path, *, context: int = 512) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "max_position_embeddings": context, "hidden_size": 64,
    }))
    save_file({"embed.weight": np.zeros((16, 64), dtype=np.float32)},
              str(directory / "model.safetensors"))
    (directory / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {}}))
    (directory / "tokenizer_config.json").write_text("{}")
    return directory


def write_adapter(directory: Path, rank: int = 8) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": rank, "lora_alpha": 16, "target_modules": ["q_proj"],
        "base_model_name_or_path": "tiny"}))
    save_file({"lora_A": np.zeros((rank, 64), dtype=np.float32)},
              str(directory / "adapter_model.safetensors"))
    return directory


def test_a_complete_directory_registers_with_what_its_config_says(tmp_path, org):
    path = write_model(tmp_path / "tiny", context=2048)
    model = services.register_local_model("tiny", path, organization=org, operator=True)
    assert model.architecture == "LlamaForCausalLM"
    assert model.context_length == 2048
    assert model.size_bytes == (path / "model.safetensors").stat().st_size


@pytest.mark.parametrize("architecture,chat_template,capabilities", [
    ("LlamaForCausalLM", "{{ messages }}", ["chat", "completions"]),
    ("LlamaForCausalLM", None, ["completions"]),
    ("BertModel", None, ["embeddings"]),
])
def test_a_model_states_the_endpoints_it_serves(tmp_path, org, architecture, chat_template,
                                                 capabilities):
    """Issue 13.2: an embeddings call to a chat model reached vLLM's missing route; what a
    model serves is known when it is registered, so the gateway refuses up front."""
    path = write_model(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "architectures": [architecture]}))
    if chat_template:
        (path / "tokenizer_config.json").write_text(json.dumps(
            {"chat_template": chat_template}))
    model = services.register_local_model("m", path, organization=org, operator=True)
    assert sorted(model.capabilities) == capabilities
    adapter = services.register_local_adapter("a", write_adapter(tmp_path / "a"), base=model,
                                              organization=org, operator=True)
    assert adapter.capabilities == model.capabilities


@pytest.mark.parametrize("breakage,reason", [
    (lambda d: (d / "config.json").unlink(), "config.json is missing"),
    (lambda d: (d / "config.json").write_text("{not json"), "config.json is not valid JSON"),
    (lambda d: (d / "config.json").write_text("{}"), "neither architectures nor model_type"),
    (lambda d: (d / "model.safetensors").unlink(), "no weights"),
    (lambda d: (d / "tokenizer.json").unlink(), "no tokenizer"),
    (lambda d: _truncate(d / "model.safetensors", 100), "model.safetensors is truncated"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}"),
     "corrupt header length"),
])
def test_a_broken_directory_is_refused_with_the_reason(tmp_path, org, breakage, reason):
    path = write_model(tmp_path / "broken")
    breakage(path)
    with pytest.raises(InvalidModelDirectory) as info:
        services.register_local_model("broken", path, organization=org, operator=True)
    assert reason in str(info.value)
    assert not RegisteredModel.objects.filter(name="broken").exists()


def _truncate(path: Path, keep_bytes_less: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-keep_bytes_less])


def test_a_sharded_model_needs_every_shard(tmp_path, org):
    path = write_model(tmp_path / "sharded")
    (path / "model.safetensors").rename(path / "model-00001-of-00002.safetensors")
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(InvalidModelDirectory) as info:
        services.register_local_model("sharded", path, organization=org, operator=True)
    assert "model-00002-of-00002.safetensors" in str(info.value)


def test_a_missing_directory_and_a_file_are_refused(tmp_path, org):
    with pytest.raises(InvalidModelDirectory, match="does not exist"):
        services.register_local_model("x", tmp_path / "nope", organization=org, operator=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidModelDirectory, match="not a directory"):
        services.register_local_model("x", tmp_path / "file", organization=org, operator=True)


def test_the_api_registers_only_from_model_roots(tmp_path, org, client_for):
    inside = write_model(tmp_path / "roots" / "tiny")
    outside = write_model(tmp_path / "elsewhere" / "tiny")
    client = client_for(org, ["read", "write"])
    with override_settings(MODEL_ROOTS=[(tmp_path / "roots").resolve()]):
        refused = client.post("/api/models", {"name": "sneaky", "path": str(outside)},
                              format="json")
        assert refused.status_code == 403
        assert "path" in refused.json()
        created = client.post("/api/models", {"name": "tiny", "path": str(inside)},
                              format="json")
        assert created.status_code == 201, created.content
        assert created.json()["public"] is False
    listed = {m["name"] for m in client.get("/api/models").json()["results"]}
    assert listed == {"tiny"}


def test_the_api_reports_validation_errors_on_the_path_field(tmp_path, org, client_for):
    path = write_model(tmp_path / "roots" / "bad")
    (path / "tokenizer.json").unlink()
    with override_settings(MODEL_ROOTS=[(tmp_path / "roots").resolve()]):
        response = client_for(org, ["read", "write"]).post(
            "/api/models", {"name": "bad", "path": str(path)}, format="json")
    assert response.status_code == 400
    assert "no tokenizer" in response.json()["path"][0]


def test_public_models_are_seen_by_all_and_deleted_by_none(tmp_path, org, other_org, client_for):
    public = services.register_local_model("demo", write_model(tmp_path / "demo"),
                                           organization=None, operator=True)
    for tenant in (org, other_org):
        client = client_for(tenant, ["read", "write"])
        assert "demo" in {m["name"] for m in client.get("/api/models").json()["results"]}
        assert client.delete(f"/api/models/{public.pk}").status_code == 403
    assert RegisteredModel.objects.filter(pk=public.pk).exists()
    with pytest.raises(Forbidden):
        services.register_local_model("demo2", tmp_path / "demo", organization=org)


def test_names_are_unique_per_org_and_never_shadow_a_public_model(tmp_path, org, other_org):
    path = write_model(tmp_path / "m")
    services.register_local_model("shared", path, organization=None, operator=True)
    with pytest.raises(Conflict):
        services.register_local_model("shared", path, organization=org, operator=True)
    services.register_local_model("mine", path, organization=org, operator=True)
    services.register_local_model("mine", path, organization=other_org, operator=True)
    with pytest.raises(Conflict):
        services.register_local_model("mine", path, organization=org, operator=True)


def test_an_adapter_belongs_to_a_base_model(tmp_path, org):
    base = services.register_local_model("base", write_model(tmp_path / "base"),
                                         organization=org, operator=True)
    adapter = services.register_local_adapter("base-lora", write_adapter(tmp_path / "lora"),
                                              base=base, organization=org, operator=True)
    assert adapter.kind == "adapter" and adapter.base == base and adapter.adapter_rank == 8
    with pytest.raises(Conflict, match="base-lora"):
        services.delete_model(base, organization=org)
    bad = write_adapter(tmp_path / "bad-lora", rank=0)
    with pytest.raises(InvalidModelDirectory, match="positive rank"):
        services.register_local_adapter("bad", bad, base=base, organization=org, operator=True)


def test_hub_models_need_a_proper_repo_id(org):
    model = services.register_hub_model("llama", "meta-llama/Llama-3.2-1B", organization=org,
                                        context_length=8192)
    assert model.repo_id == "meta-llama/Llama-3.2-1B" and model.revision == "main"
    with pytest.raises(services.InvalidInput, match="repository id"):
        services.register_hub_model("x", "../../etc/passwd", organization=org)


def test_a_deployed_model_is_undeployed_before_it_is_removed(tmp_path, org, client_for):
    from potluck.serving.models import Deployment, DeploymentState

    model = services.register_local_model("served", write_model(tmp_path / "s"),
                                          organization=org, operator=True)
    deployment = Deployment.objects.create(model=model, organization=org, replicas=1)
    client = client_for(org, ["read", "write"])
    refused = client.delete(f"/api/models/{model.pk}")
    assert refused.status_code == 409 and "undeploy" in refused.json()["detail"]
    deployment.state = DeploymentState.STOPPED
    deployment.save()
    assert client.delete(f"/api/models/{model.pk}").status_code == 204
    assert not RegisteredModel.objects.filter(pk=model.pk).exists()
