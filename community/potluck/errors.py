# SPDX-License-Identifier: Apache-2.0
"""Domain errors raised by services; each edge (DRF, /v1, CLI) renders them in its own shape."""

from __future__ import annotations


class PotluckError(Exception):
    """Base class: the message is safe to show to the caller."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(PotluckError):
    status = 400


class NotFound(PotluckError):
    status = 404


class Conflict(PotluckError):
    status = 409


class Forbidden(PotluckError):
    status = 403


class QuotaExceeded(PotluckError):
    """An organization's capacity quota would be exceeded (``code``: ``quota_exceeded``)."""

    status = 403
    code = "quota_exceeded"


class ConcurrencyQuotaExceeded(QuotaExceeded):
    """Too many things at once: it frees up as they finish, so a 429 (as OpenAI answers
    for too many active fine-tuning jobs)."""

    status = 429
class InsufficientStorage(PotluckError):
    """The server's disk (or quota) is full: nothing was stored (HTTP 507, RFC 4918)."""

    status = 507
    code = "storage_full"
