# SPDX-License-Identifier: Apache-2.0
"""``potluck deploy``, ``scale``, ``undeploy`` and ``ps``: the serving pool from the shell."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from potluck.cli.accounts import find_org
from potluck.cli.context import CliError, needs_django

console = Console()


def _whole_number(text: str | None, flag: str) -> int | None:
    """Numbers are parsed here, not by click, so bad input gets the one-line error shape."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise CliError(f"{flag} must be a whole number, got {text!r}") from None


def _find_model(name: str, org_name: str | None, public: bool):  # noqa: ANN202 - late imports
    """The model named NAME: the org's, the public one, or the only one with that name."""
    from potluck.registry.models import RegisteredModel

    if org_name and public:
        raise CliError("give at most one of --org NAME or --public")
    named = RegisteredModel.objects.filter(name=name).select_related("organization")
    if org_name:
        org = find_org(org_name)
        model = named.filter(organization=org).first()
        owner = org.slug
    elif public:
        model = named.filter(organization__isnull=True).first()
        owner = "the public"
    else:
        found = list(named[:2])
        if len(found) > 1:
            raise CliError(f"several models are named {name!r}; give --org NAME or --public")
        model = found[0] if found else None
        owner = "anyone"
    if model is None:
        raise CliError(f"no model {name!r} owned by {owner} (see `potluck models list`)")
    return model


def _live_deployment(name: str, org_name: str | None, public: bool):  # noqa: ANN202
    from potluck.serving.selectors import live_deployment_of

    model = _find_model(name, org_name, public)
    deployment = live_deployment_of(model)
    if deployment is None:
        raise CliError(f"{name} is not deployed (deploy it with `potluck deploy {name}`)")
    return deployment


def _engine_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value that parses as JSON is taken as such (64, true, 0.8)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--engine-arg takes KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(text)
        except ValueError:
            options[key.strip()] = text
    return options


def _owner(deployment: Any) -> str:
    return "public" if deployment.organization_id is None else deployment.organization.slug


@click.command()
@click.argument("model_name", metavar="MODEL")
@click.option("--replicas", default="1", show_default=True, help="How many vLLM servers.")
@click.option("--org", "org_name", help="The organization whose model it is.")
@click.option("--public", is_flag=True, help="Deploy the public model of that name.")
@click.option("--max-model-len", help="Context length to serve (at most the model's).")
@click.option("--dtype", help="auto, float32, bfloat16 or float16 (default: auto).")
@click.option("--enable-lora", is_flag=True, help="Let the replicas load LoRA adapters.")
@click.option("--max-lora-rank", help="Largest adapter rank: 8, 16, 32 or 64.")
@click.option("--gpus-per-replica", help="Default: one on GPU hosts, none on CPU hosts.")
@click.option("--node", "nodes", multiple=True, help="Run only on this node (repeatable).")
@click.option("--engine-arg", "engine_options", multiple=True, metavar="KEY=VALUE",
              help="An allowlisted engine option, e.g. max_num_seqs=64 (repeatable; the "
                   "value is read as JSON, else as text).")
@click.option("--vllm-arg", "vllm_args", multiple=True, metavar="ARG",
              help="Operator only: a free-form vLLM argument passed as is, e.g. "
                   "--vllm-arg=--kv-cache-dtype=fp8 (repeatable).")
@needs_django
def deploy(model_name: str, replicas: str, org_name: str | None, public: bool,
           max_model_len: str | None, dtype: str | None, enable_lora: bool,
           max_lora_rank: str | None, gpus_per_replica: str | None,
           nodes: tuple[str, ...], engine_options: tuple[str, ...],
           vllm_args: tuple[str, ...]) -> None:
    """Serve MODEL with vLLM on the node agents."""
    from potluck.serving import services

    model = _find_model(model_name, org_name, public)
    engine_args: dict[str, Any] = _engine_options(engine_options)
    if dtype is not None:
        engine_args["dtype"] = dtype
    for key, text, flag in (("max_model_len", max_model_len, "--max-model-len"),
                            ("max_lora_rank", max_lora_rank, "--max-lora-rank"),
                            ("gpus_per_replica", gpus_per_replica, "--gpus-per-replica")):
        if text is not None:
            engine_args[key] = _whole_number(text, flag)
    if enable_lora:
        engine_args["enable_lora"] = True
    deployment = services.create_deployment(
        model, _whole_number(replicas, "--replicas"), engine_args,
        {"nodes": list(nodes)} if nodes else {}, organization=model.organization,
        operator=True, operator_args=list(vllm_args))
    click.echo(f"deploying {model.name} ({_owner(deployment)}): {deployment.replicas} "
               f"replica(s); watch them with `potluck ps`")


@click.command()
@click.argument("model_name", metavar="MODEL")
@click.argument("replicas", metavar="N")
@click.option("--org", "org_name", help="The organization whose model it is.")
@click.option("--public", is_flag=True, help="The public model of that name.")
@needs_django
def scale(model_name: str, replicas: str, org_name: str | None, public: bool) -> None:
    """Run N replicas of a deployed MODEL (surplus replicas drain first)."""
    from potluck.serving import services

    deployment = _live_deployment(model_name, org_name, public)
    deployment = services.scale_deployment(deployment, _whole_number(replicas, "N"),
                                           organization=None, operator=True)
    click.echo(f"scaled {model_name} to {deployment.replicas} replica(s)")


@click.command()
@click.argument("model_name", metavar="MODEL")
@click.option("--org", "org_name", help="The organization whose model it is.")
@click.option("--public", is_flag=True, help="The public model of that name.")
@needs_django
def undeploy(model_name: str, org_name: str | None, public: bool) -> None:
    """Stop serving MODEL: its replicas drain, then stop."""
    from potluck.serving import services

    deployment = services.undeploy(_live_deployment(model_name, org_name, public),
                                   organization=None, operator=True)
    click.echo(f"undeploying {model_name}: replicas drain and stop ({deployment.state})")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include stopped replicas.")
@click.option("--org", "org_name", help="Only what this organization sees.")
@needs_django
def ps(show_all: bool, org_name: str | None) -> None:
    """List replicas: model, node, port, state and why they failed."""
    from django.utils import timezone

    from potluck.serving.models import Replica, ReplicaState

    replicas = (Replica.objects.for_org(find_org(org_name)) if org_name
                else Replica.objects.all()).select_related("deployment__model", "node")
    if not show_all:
        replicas = replicas.exclude(state=ReplicaState.STOPPED)
    now = timezone.now()
    table = Table("model", "replica", "node", "port", "state", "reason", "age")
    for replica in replicas.order_by("deployment__model__name", "started_at"):
        table.add_row(replica.deployment.model.name, str(replica.id)[:8], replica.node.name,
                      str(replica.port or "-"), replica.state, replica.reason or "",
                      _age((now - replica.started_at).total_seconds()))
    if table.row_count:
        console.print(table)
    else:
        click.echo("no replicas" + ("" if show_all else " running") +
                   " (serve a model with `potluck deploy MODEL`)")


@click.command("stop-replicas", hidden=True)
@click.option("--node", "node_name", help="Node name (default: this host's node).")
@click.option("--drain-seconds", default=5.0, show_default=True, type=float)
@needs_django
def stop_replicas(node_name: str | None, drain_seconds: float) -> None:
    """Drain and stop every replica of this host's node (used by `potluck up` on shutdown)."""
    from potluck.nodes.services import default_node_name
    from potluck.serving import services

    name = node_name or default_node_name()
    stopped = services.stop_all_replicas_on_node(name, drain_seconds=drain_seconds)
    click.echo(f"stopped {stopped} replica(s) on node {name}")
