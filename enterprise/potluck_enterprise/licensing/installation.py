# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""This installation's id: stable, generated on first use, shown to the operator.

The id is ``inst_`` followed by 26 lowercase base32 characters (130 random bits). It lives
in the database (one row), so every process of the installation reads the same id, and a
restored backup keeps it. A licence bound to an installation (licence format version 2)
verifies only where this id matches; the store's buy link carries it.
"""

from __future__ import annotations

import base64
import secrets

from django.db import IntegrityError, transaction

from potluck_enterprise.licensing.models import Installation

PREFIX = "inst_"


def generate() -> str:
    """A new installation id (``inst_`` + 26 base32 characters)."""
    raw = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=").lower()
    return PREFIX + raw[:26]


def get() -> Installation:
    """The installation's row, made on first use (two processes racing agree on one)."""
    row = Installation.objects.filter(pk=1).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return Installation.objects.create(pk=1, installation_id=generate())
    except IntegrityError:  # another process made it first
        return Installation.objects.get(pk=1)


def current_id() -> str:
    """This installation's id (one indexed query; read on each use so that it is never
    stale, e.g. after a database restore)."""
    return get().installation_id
