# SPDX-License-Identifier: Apache-2.0
"""Django set-up for CLI commands, and the one-line error shape they share."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import psutil

from potluck import env

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """Printed as one line, ``error: ...``, exit status 1."""

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def read_json_file(path: str) -> Any:
    """The JSON document in the file ``path`` (``-``: standard input). Raises ``CliError``
    naming the file when it cannot be read or is not JSON."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        return json.loads(text)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None


def _services_configured() -> bool:
    if env.env_str("DATABASE_URL"):
        return True
    published = env.running_services(env.data_dir())
    pid = published.get("pid")
    return bool(published.get("DATABASE_URL")) and isinstance(pid, int) and psutil.pid_exists(pid)


def setup_django() -> None:
    if not _services_configured():
        raise CliError(
            f"Potluck is not running on {env.data_dir()} and DATABASE_URL is not set; "
            "start it with `potluck up` (or `make run`) first")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")
    import django

    django.setup()


def needs_django(func: F) -> F:
    """Set Django up, and turn domain and connection errors into one clear line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_django()
        from django.db import OperationalError

        from potluck.errors import PotluckError

        try:
            return func(*args, **kwargs)
        except PotluckError as exc:
            where = f"{exc.field}: " if exc.field else ""
            raise CliError(f"{where}{exc.message}") from None
        except OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CliError(f"cannot reach the database: {first}") from None

    return wrapper  # type: ignore[return-value]
