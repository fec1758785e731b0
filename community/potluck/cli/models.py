# SPDX-License-Identifier: Apache-2.0
"""``potluck models``: the registry from the operator's shell."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from potluck.cli.accounts import find_org
from potluck.cli.context import CliError, needs_django

console = Console()


@click.group()
def models() -> None:
    """Registered models and adapters."""


@models.command("add")
@click.argument("name")
@click.option("--path", type=click.Path(), help="Local model (or adapter) directory.")
@click.option("--repo-id", help="Hugging Face repository id, for hosts that reach a hub.")
@click.option("--revision", default="main", show_default=True)
@click.option("--base", help="Register a LoRA adapter of this base model.")
@click.option("--org", "org_name", help="Owning organization.")
@click.option("--public", is_flag=True, help="Serve it to every organization.")
@click.option("--license", "license_", default="", help="Licence name, e.g. apache-2.0.")
@click.option("--context-length", type=click.IntRange(min=1), help="For hub models.")
@needs_django
def models_add(name: str, path: str | None, repo_id: str | None, revision: str,
               base: str | None, org_name: str | None, public: bool, license_: str,
               context_length: int | None) -> None:
    """Register a model after checking that it can be loaded."""
    from pathlib import Path

    from potluck.registry import services

    if public == bool(org_name):
        raise CliError("give exactly one of --org NAME or --public")
    if bool(path) == bool(repo_id):
        raise CliError("give exactly one of --path DIR or --repo-id OWNER/NAME")
    org = find_org(org_name) if org_name else None
    if base:
        if not path:
            raise CliError("an adapter needs --path")
        model = services.register_local_adapter(
            name, Path(path).absolute(), base=services.resolve(base, org), organization=org,
            operator=True)
    elif path:
        model = services.register_local_model(name, Path(path).absolute(), organization=org,
                                              license=license_, operator=True)
    else:
        model = services.register_hub_model(name, repo_id or "", organization=org,
                                             revision=revision, license=license_,
                                             context_length=context_length, operator=True)
    owner = "public" if model.is_public else model.organization.slug
    click.echo(f"registered {model.name} ({model.kind}, {owner}, "
               f"{model.architecture or 'architecture unknown'}, "
               f"context {model.context_length or 'unknown'})")


@models.command("list")
@click.option("--org", "org_name", help="Show what this organization sees (default: all).")
@needs_django
def models_list(org_name: str | None) -> None:
    """List registered models."""
    from potluck.registry.models import RegisteredModel

    queryset = (RegisteredModel.objects.for_org(find_org(org_name)) if org_name
                else RegisteredModel.objects.all())
    table = Table("name", "kind", "owner", "source", "architecture", "context")
    for m in queryset.select_related("organization"):
        table.add_row(m.name, m.kind if not m.base_id else f"adapter of {m.base.name}",
                      "public" if m.is_public else m.organization.slug,
                      m.path or f"{m.repo_id}@{m.revision}", m.architecture,
                      str(m.context_length or "-"))
    console.print(table)


@models.command("remove")
@click.argument("name")
@click.option("--org", "org_name", help="Owning organization (omit for a public model).")
@needs_django
def models_remove(name: str, org_name: str | None) -> None:
    """Remove a model from the registry (its files are left alone)."""
    from potluck.registry import services
    from potluck.registry.models import RegisteredModel

    org = find_org(org_name) if org_name else None
    model = RegisteredModel.objects.filter(name=name, organization=org).first()
    if model is None:
        raise CliError(f"no model {name!r} owned by {org_name or 'the public'}")
    services.delete_model(model, organization=org)
    click.echo(f"removed {name}")
