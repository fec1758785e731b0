# SPDX-License-Identifier: Apache-2.0
"""Public object ids in OpenAI's shapes: ``file-…``, ``ftjob-…``, ``batch_…``."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """``prefix`` followed by ``length`` random base-62 characters (~143 bits)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))
