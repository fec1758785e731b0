# SPDX-License-Identifier: Apache-2.0
"""``potluck fine-tunes``: list, watch (a live progress bar), pause, resume and cancel
fine-tuning jobs.

Jobs are created with the OpenAI SDK or the API (they need an uploaded dataset); the
CLI is for the operator who wants to see them train.
"""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column, Table

from potluck.cli.accounts import find_org
from potluck.cli.context import CliError, needs_django

console = Console()


@click.group("fine-tunes")
def fine_tunes() -> None:
    """Fine-tuning jobs: list, watch live, pause, resume, cancel."""


@fine_tunes.command("list")
@click.option("--org", "org_name", required=True, help="Organization slug or name.")
@needs_django
def list_jobs(org_name: str) -> None:
    """An organization's jobs, newest first."""
    from potluck.finetune import selectors

    table = Table("model", "status", "fine-tuned model", "created")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=30))
    for job in selectors.list_jobs(find_org(org_name)).order_by("-created_at")[:50]:
        table.add_row(job.id, job.model_name, job.status, job.fine_tuned_model or "-",
                      job.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@fine_tunes.command()
@click.argument("job_id")
@click.option("--org", "org_name", required=True, help="Organization slug or name.")
@needs_django
def watch(job_id: str, org_name: str) -> None:
    """Follow a job until it ends or pauses: progress, loss, ETA; exit 1 if it fails."""
    from potluck.finetune import selectors

    org = find_org(org_name)
    job = selectors.get_job(org, job_id)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(job.status, total=None, info="")
        while True:
            job = selectors.get_job(org, job_id)
            latest = selectors.job_events(job).filter(type="metrics").order_by(
                "-created_at").first()
            if latest is not None and latest.data:
                data = latest.data
                info = f"loss {data.get('train_loss', 0):.3f}"
                if data.get("valid_loss") is not None:
                    info += f" · valid {data['valid_loss']:.3f}"
                progress.update(task, total=data.get("total_steps"),
                                completed=data.get("step", 0), info=info)
            progress.update(task, description=job.status)
            if job.is_terminal or job.status == "paused":
                break
            time.sleep(1)
    if job.status == "succeeded":
        click.echo(job.fine_tuned_model)
    elif job.status == "failed":
        raise CliError(f"{job.id} failed: {(job.error or {}).get('message', 'no reason')}")
    else:
        click.echo(f"{job.id} {job.status}")


def _job_action(name: str, help_text: str, act: str, while_running: str | None) -> None:
    """Add ``fine-tunes NAME JOB --org ORG``: calls ``services.<act>(org, job_id)`` and
    prints ``<job id> <status>`` (``while_running`` instead when the job still runs,
    i.e. its trainer was asked to stop)."""

    @fine_tunes.command(name, help=help_text)
    @click.argument("job_id")
    @click.option("--org", "org_name", required=True, help="Organization slug or name.")
    @needs_django
    def command(job_id: str, org_name: str) -> None:
        from potluck.finetune import services

        job = getattr(services, act)(find_org(org_name), job_id)
        said = while_running if while_running and job.status == "running" else job.status
        click.echo(f"{job.id} {said}")


_job_action("cancel", "Cancel a job (a running trainer stops within a step).", "cancel_job",
            "cancelling")
_job_action("pause", "Pause a job (a running trainer checkpoints its step and stops; its "
                     "slot is freed).", "pause_job", "pausing")
_job_action("resume", "Resume a paused job: queued again, it continues from its last "
                      "checkpoint.", "resume_job", None)
