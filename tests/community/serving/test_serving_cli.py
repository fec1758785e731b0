# SPDX-License-Identifier: Apache-2.0
"""`potluck deploy / scale / undeploy / ps` against the real database, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from potluck.serving.models import Deployment, DeploymentState


def potluck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "potluck", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_deploy_scale_ps_and_undeploy_from_the_shell(live_env, make_model, make_node, org):
    make_node("cpu-a")
    make_model("shared")
    make_model("private", organization=org)
    deployed = potluck(live_env, "deploy", "shared", "--replicas", "2", "--dtype", "bfloat16",
                       "--max-model-len", "1024")
    assert deployed.returncode == 0, deployed.stderr
    assert "deploying shared (public): 2 replica(s)" in deployed.stdout
    deployment = Deployment.objects.get(model__name="shared")
    assert deployment.organization is None
    assert deployment.engine_args["dtype"] == "bfloat16"
    assert deployment.engine_args["max_model_len"] == 1024
    private = potluck(live_env, "deploy", "private", "--org", org.slug, "--enable-lora",
                      "--max-lora-rank", "8", "--replicas", "0")
    assert private.returncode == 0, private.stderr
    assert Deployment.objects.get(model__name="private").organization == org

    from potluck.serving.scheduler import schedule

    schedule()
    listed = potluck(live_env, "ps")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("starting") == 2 and "cpu-a" in listed.stdout

    scaled = potluck(live_env, "scale", "shared", "1")
    assert scaled.returncode == 0 and "scaled shared to 1 replica(s)" in scaled.stdout
    assert Deployment.objects.get(pk=deployment.pk).replicas == 1
    gone = potluck(live_env, "undeploy", "shared")
    assert gone.returncode == 0, gone.stderr
    assert Deployment.objects.get(pk=deployment.pk).state != DeploymentState.ACTIVE


@pytest.mark.parametrize("args,message", [
    (("deploy", "nothing"), "no model 'nothing'"),
    (("deploy", "tiny", "--replicas", "many"), "--replicas must be a whole number"),
    (("deploy", "tiny", "--replicas", "40"), "replicas: must be a whole number from 0 to 16"),
    (("deploy", "tiny", "--dtype", "int8"), "engine_args.dtype: must be one of"),
    (("deploy", "tiny", "--max-model-len", "999999"), "engine_args.max_model_len:"),
    (("deploy", "tiny", "--max-lora-rank", "12", "--enable-lora"), "engine_args.max_lora_rank"),
    (("deploy", "tiny", "--org", "x", "--public"), "at most one of --org NAME or --public"),
    (("scale", "tiny", "2"), "tiny is not deployed"),
    (("undeploy", "tiny"), "tiny is not deployed"),
])
def test_bad_input_prints_one_line_and_exits_1(live_env, make_model, args, message):
    make_model("tiny")
    done = potluck(live_env, *args)
    assert done.returncode == 1, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
