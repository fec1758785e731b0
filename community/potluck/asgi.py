# SPDX-License-Identifier: Apache-2.0
"""ASGI entry point, served by gunicorn with uvicorn workers (see deploy/)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")

application = get_asgi_application()
