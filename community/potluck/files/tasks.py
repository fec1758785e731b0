# SPDX-License-Identifier: Apache-2.0
"""Celery tasks of the Files app (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from potluck.files import services


@shared_task(name="potluck.files.delete_expired", ignore_result=True, queue="potluck.control")
def delete_expired() -> int:
    """Delete files past their ``expires_at`` (beat sends this periodically)."""
    return services.delete_expired_files()
