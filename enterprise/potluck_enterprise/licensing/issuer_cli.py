# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""``potluck-license``: the issuer's tool (keygen, issue). Runs without Django or a database.

The private key is read from ``--key FILE`` or from the environment variable
``POTLUCK_LICENSE_PRIVATE_KEY`` (the PEM text itself); it is never stored in the project.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from potluck.errors import PotluckError
from potluck_enterprise.licensing import format
from potluck_enterprise.licensing.licence import FORMAT_VERSION, KNOWN_FEATURES, Licence

PRIVATE_KEY_ENV = "POTLUCK_LICENSE_PRIVATE_KEY"
DEFAULT_GRACE_DAYS = 14


class IssuerError(click.ClickException):
    """Printed as one line, ``error: ...``, exit status 1."""

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise IssuerError(f"{path} already exists; not overwriting it") from None
    except OSError as exc:
        raise IssuerError(f"cannot write {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # the umask may have narrowed or the file system widened it


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Issue Potluck enterprise licences (for the issuer, not for installations)."""


@cli.command()
@click.option("--private", "private_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("license-private-key.pem"), show_default=True,
              help="Where to write the private key (mode 0600).")
@click.option("--public", "public_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("license-public-key.pem"), show_default=True,
              help="Where to write the public key, the one Potluck ships.")
def keygen(private_path: Path, public_path: Path) -> None:
    """Make a new Ed25519 issuer key pair; refuses to overwrite either file."""
    for path in (private_path, public_path):
        if path.exists():
            raise IssuerError(f"{path} already exists; not overwriting it")
    private_pem, public_pem = format.generate_key_pair()
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except IssuerError:
        private_path.unlink()  # leave no half of a pair behind
        raise
    click.echo(f"wrote {private_path} (private, keep it out of every repository) and "
               f"{public_path} (public)")


def _private_key_pem(key_path: Path | None) -> bytes:
    if key_path is not None:
        try:
            return key_path.read_bytes()
        except OSError as exc:
            raise IssuerError(f"cannot read {key_path}: {exc.strerror or exc}") from None
    pem = os.environ.get(PRIVATE_KEY_ENV, "")
    if not pem.strip():
        raise IssuerError(f"give the private key with --key FILE or in ${PRIVATE_KEY_ENV}")
    return pem.encode()


def _features(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(f.strip() for f in value.split(",") if f.strip()))
    unknown = [f for f in names if f not in KNOWN_FEATURES]
    if unknown:
        raise IssuerError(f"unknown feature {unknown[0]!r}; choose from "
                          f"{', '.join(KNOWN_FEATURES)}")
    return names


@cli.command()
@click.option("--licensee", required=True, help="Who the licence is for (shown to admins).")
@click.option("--organization", default=None, help="The licensee's organization (default: "
              "the licensee).")
@click.option("--features", default="", help="Comma-separated: " + ", ".join(KNOWN_FEATURES))
@click.option("--seats", type=click.IntRange(1, format.MAX_SEATS), required=True)
@click.option("--days", type=click.IntRange(1, 36500), required=True,
              help="Valid for this many days from now.")
@click.option("--grace-days", type=click.IntRange(0, format.MAX_GRACE_DAYS),
              default=DEFAULT_GRACE_DAYS, show_default=True,
              help="Days after expiry that features stay on.")
@click.option("--license-id", default=None, help="Default: a new random id.")
@click.option("--installation-id", default=None,
              help="Bind the licence to this installation (format version 2; see "
                   "`potluck license show`); default: valid on any installation.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help=f"The issuer's private key (PEM); else ${PRIVATE_KEY_ENV} holds it.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the licence here (never overwriting) instead of standard output.")
def issue(licensee: str, organization: str | None, features: str, seats: int, days: int,
          grace_days: int, license_id: str | None, installation_id: str | None,
          key_path: Path | None, out: Path | None) -> None:
    """Sign a licence and print it (or write it to --out)."""
    granted = _features(features)
    try:
        private_key = format.load_private_key(_private_key_pem(key_path))
    except PotluckError as exc:
        raise IssuerError(exc.message) from None
    issued_at = datetime.now(UTC).replace(microsecond=0)
    licence = Licence(
        version=FORMAT_VERSION,
        license_id=license_id or f"lic-{uuid.uuid4().hex[:16]}",
        licensee=licensee.strip(),
        organization=(organization if organization is not None else licensee).strip(),
        features=granted,
        seats=seats,
        issued_at=issued_at,
        expires_at=issued_at + timedelta(days=days),
        grace_days=grace_days,
        installation_id=installation_id.strip() if installation_id else None,
    )
    text = format.issue(licence, private_key)
    try:  # what we sign must be what Potluck accepts: check it with the matching public key
        format.verify(text, now=issued_at, public_key=private_key.public_key(),
                      installation_id=licence.installation_id)
    except format.LicenceError as exc:
        raise IssuerError(exc.message) from None
    if out is None:
        sys.stdout.write(text)
        return
    _write_new(out, text.encode(), 0o644)
    click.echo(f"wrote {out}: licence {licence.license_id} for {licence.licensee}, "
               f"expires {licence.expires_at:%Y-%m-%d}", err=True)


def main() -> None:
    cli(prog_name="potluck-license")


if __name__ == "__main__":
    main()
