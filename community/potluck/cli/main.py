# SPDX-License-Identifier: Apache-2.0
"""The ``potluck`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from potluck import __version__, env
from potluck.cli.accounts import invitations, keys, orgs, users
from potluck.cli.context import CliError, setup_django
from potluck.cli.doctor import doctor
from potluck.cli.finetune import fine_tunes
from potluck.cli.models import models
from potluck.cli.serving import deploy, ps, scale, stop_replicas, undeploy


class ExtensibleGroup(click.Group):
    """The built-in commands, plus those an extension adds (``extensions.cli_commands``)."""

    def _extension_commands(self) -> dict[str, click.Command]:
        try:
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")
            import django

            django.setup()  # loads settings and apps; connects to nothing
        except Exception:  # a broken environment must not break the built-in commands
            return {}
        from potluck import extensions

        return dict(extensions.cli_commands.items())

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._extension_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._extension_commands().get(cmd_name)


@click.group(cls=ExtensibleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="potluck")
def cli() -> None:
    """Potluck: serve and fine-tune open-weight LLMs.

    Commands act on the data dir in POTLUCK_DATA_DIR (default ./.potluck) and on the
    services that `potluck up` runs there, unless DATABASE_URL and REDIS_URL are set.
    """


@cli.command()
@click.option("--host", default=lambda: env.env_str("POTLUCK_HOST", "127.0.0.1"),
              show_default="127.0.0.1", help="Address the web server binds.")
@click.option("--port", type=int, default=lambda: env.env_int("POTLUCK_PORT", 8000),
              show_default="8000")
@click.option("--web-workers", type=click.IntRange(min=1),
              default=lambda: env.env_int("POTLUCK_WEB_WORKERS", 2), show_default="2")
def up(host: str, port: int, web_workers: int) -> None:
    """Start everything (database, redis, web, beat, node agent); Ctrl-C stops it all."""
    from potluck.runtime.supervisor import StartupError, Supervisor

    supervisor = Supervisor(env.data_dir(), host, port, web_workers,
                            say=lambda line: click.echo(line, err=line.startswith("error")))
    try:
        code = supervisor.run()
    except StartupError as exc:
        raise CliError(str(exc)) from None
    sys.exit(code)


@cli.command()
@click.option("--name", help="Node name (default: POTLUCK_NODE_NAME or the host name).")
@click.option("--control/--no-control", default=False,
              help="Also run cluster-wide control tasks (one agent per cluster needs this).")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True)
def agent(name: str | None, control: bool, concurrency: int) -> None:
    """Run this host's node agent (a Celery worker on queue node.<name>)."""
    setup_django()
    from potluck.agent import worker as node_agent
    from potluck.nodes.services import default_node_name

    node_agent.run(name or default_node_name(), control=control, concurrency=concurrency)


@cli.command(hidden=True)
def bootstrap() -> None:
    """Migrate and create the first admin (used by `potluck up`)."""
    setup_django()
    from django.core.management import call_command

    from potluck.accounts.services import bootstrap_admin

    call_command("migrate", interactive=False, verbosity=0)
    _, password = bootstrap_admin()
    if password:
        click.echo(f"password:{password}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def manage(args: tuple[str, ...]) -> None:
    """Run a Django management command (e.g. `potluck manage migrate`)."""
    setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["potluck manage", *args])


@cli.group()
def services() -> None:
    """The state services (PostgreSQL, Redis) on their own."""


@services.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def services_run(command: tuple[str, ...]) -> None:
    """Run COMMAND with PostgreSQL and Redis up (embedded unless configured), then stop them.

    Used by `make test`: `potluck services run -- pytest`.
    """
    from potluck.runtime.services import state_services

    with state_services(env.data_dir()) as running:
        child_env = {**os.environ, **running.environment()}
        try:
            code = subprocess.call(list(command), env=child_env)
        except FileNotFoundError:
            raise CliError(f"no such command: {command[0]}") from None
    sys.exit(code)


@cli.command("demo-model")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=250, show_default=True,
              help="Pre-training steps (16 x 128 tokens each).")
@click.option("--force", is_flag=True, help="Build again even if a matching build exists.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="Model directory (default: <data dir>/models/potluck-demo).")
def demo_model(seed: int, steps: int, force: bool, output: Path | None) -> None:
    """Build potluck-demo, a tiny Llama trained here on Python's docs (no download).

    Prints the model directory last; it is reused when already built with these options.
    """
    from potluck.demo_model import DemoModelError, build_demo_model

    try:
        path = build_demo_model(output, seed=seed, steps=steps, force=force,
                                progress=True)
    except DemoModelError as exc:
        raise CliError(str(exc)) from None
    click.echo(path)


@cli.command("demo-provision", hidden=True)
@click.option("--steps", type=click.IntRange(min=1),
              default=lambda: env.env_int("POTLUCK_DEMO_STEPS", 250))
def demo_provision(steps: int) -> None:
    """Build potluck-demo if needed, register it as public and deploy it (used by `up`)."""
    setup_django()
    from potluck.demo_model import DemoModelError, build_demo_model
    from potluck.runtime.demo import ensure_demo_deployment

    try:
        path = build_demo_model(steps=steps, progress=True)
    except DemoModelError as exc:
        raise CliError(str(exc)) from None
    click.echo(ensure_demo_deployment(path))


cli.add_command(orgs)
cli.add_command(users)
cli.add_command(invitations)
cli.add_command(keys)
cli.add_command(models)
cli.add_command(doctor)
cli.add_command(deploy)
cli.add_command(scale)
cli.add_command(undeploy)
cli.add_command(ps)
cli.add_command(fine_tunes)
cli.add_command(stop_replicas)


def main() -> None:
    cli(prog_name="potluck")
