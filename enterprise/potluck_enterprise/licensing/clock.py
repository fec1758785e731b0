# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The time that licensing reads: one function, so tests can put a controlled clock here."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
