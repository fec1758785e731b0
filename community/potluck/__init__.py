# SPDX-License-Identifier: Apache-2.0
"""Potluck community edition: serve and fine-tune open-weight LLMs."""

from .celery_app import app as celery_app

__version__ = "0.1.0"
__all__ = ["__version__", "celery_app"]
