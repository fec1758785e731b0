# SPDX-License-Identifier: Apache-2.0
"""The Celery application: slow, durable work (never the inference path)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")

app = Celery("potluck")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
