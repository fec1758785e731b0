# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Sign-in tokens are kept out of the logs.

A sign-in link carries its token in the path (``/store/sign-in/<token>``), and access logs
and Django's request warnings write paths. ``RedactSignInTokens`` rewrites such a path to
``/store/sign-in/[token]`` in any record of the loggers that write request paths, so a
token still valid for some minutes is never readable from a log.
"""

from __future__ import annotations

import logging
import re

TOKEN_IN_PATH = re.compile(r"(/store/sign-in/)[A-Za-z0-9_\-]{8,}")
REQUEST_LOGGERS = ("uvicorn.access", "gunicorn.access", "django.request", "django.server")


def redact(text: str) -> str:
    return TOKEN_IN_PATH.sub(r"\1[token]", text)


class RedactSignInTokens(logging.Filter):
    """Rewrites sign-in tokens in a record's message and arguments; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v
                           for k, v in record.args.items()}
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            # Django's request records carry the request; handlers may format its path.
            record.request_path = redact(request.path)
        return True


_FILTER = RedactSignInTokens()


def install() -> None:
    """Add the filter to every logger that writes request paths (idempotent)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
