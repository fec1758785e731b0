# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""``potluck audit``: export an organization's chain, verify an export offline, sign
checkpoints now, purge content past retention, print the installation's public key."""

from __future__ import annotations

import json
from pathlib import Path

import click

from potluck.cli.context import CliError, needs_django


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log (compliance)."""


@audit_group.command("export")
@click.option("--org", "org_slug", help="The organization (default: the installation's own "
              "chain of acts that belong to no organization).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here (default: standard output).")
@click.option("--checkpoint-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the newest signed checkpoint here, to hand to an outside "
                   "party.")
@needs_django
def export(org_slug: str | None, out: Path | None, checkpoint_out: Path | None) -> None:
    """Export a chain as JSON lines (a fresh signed checkpoint of its head included)."""
    from potluck.accounts.services import get_organization
    from potluck_enterprise.audit import services
    from potluck_enterprise.audit.models import AuditCheckpoint

    org = get_organization(org_slug) if org_slug else None
    key = services.chain_key(org.id if org else None)
    lines = services.export_lines(key)
    if out is None:
        for line in lines:
            click.echo(line)
    else:
        with out.open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line + "\n")
        click.echo(f"wrote {out}", err=True)
    if checkpoint_out is not None:
        latest = AuditCheckpoint.objects.filter(chain=key).order_by("-size").first()
        if latest is None:
            raise CliError("the chain is empty: there is no checkpoint to write")
        checkpoint_out.write_text(json.dumps(services.checkpoint_record(latest)) + "\n")
        click.echo(f"wrote {checkpoint_out}", err=True)


@audit_group.command("verify")
@click.argument("export_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--checkpoint", "checkpoints", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A checkpoint received earlier (JSON); may be repeated.")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The installation's public key (PEM) you trust.")
def verify(export_file: Path, checkpoints: tuple[Path, ...], public_key: Path | None) -> None:
    """Verify an export offline: no entry altered, removed, reordered, or cut since a
    checkpoint. Needs no database. Exit status 1 on any problem."""
    from potluck_enterprise.audit.verify import read_lines
    from potluck_enterprise.audit.verify import verify as check

    try:
        records = read_lines(export_file.read_text(encoding="utf-8").splitlines())
        held = [r for path in checkpoints for r in read_lines(path.read_text().splitlines())]
    except (ValueError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the export: {exc}") from None
    report = check(records, held, public_key.read_bytes() if public_key else None)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if not report.ok:
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        raise CliError(f"verification FAILED for {report.chain or export_file}: "
                       f"{len(report.problems)} problem(s)")
    click.echo(f"verified {report.chain}: {report.entries} entries, "
               f"{report.checkpoints_checked} signed checkpoint(s) hold")


@audit_group.command("checkpoint")
@needs_django
def checkpoint() -> None:
    """Sign a checkpoint of every chain that grew since its last one."""
    from potluck_enterprise.audit import services

    click.echo(f"signed {services.checkpoint_all()} checkpoint(s)")


@audit_group.command("purge")
@needs_django
def purge() -> None:
    """Delete stored request content past its profile's retention (entries stay)."""
    from potluck_enterprise.audit import services

    click.echo(f"purged the content of {services.purge_content()} entries")


@audit_group.command("public-key")
@needs_django
def public_key() -> None:
    """Print the installation's checkpoint public key (PEM), for auditors to pin."""
    from potluck_enterprise.audit import services

    _, kid, pem = services.signing_key()
    click.echo(pem.decode().rstrip())
    click.echo(f"key id: {kid}", err=True)
