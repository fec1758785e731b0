# SPDX-License-Identifier: Apache-2.0
"""Request checks shared by the OpenAI-shaped endpoints (batches, fine-tuning jobs)."""

from __future__ import annotations

from typing import Any

from potluck.errors import InvalidInput

# OpenAI's limits on an object's ``metadata``.
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def invalid(message: str, field: str, code: str | None = None) -> InvalidInput:
    """An InvalidInput that also carries OpenAI's ``error.code``."""
    error = InvalidInput(message, field=field)
    error.code = code  # type: ignore[attr-defined]  # rendered as OpenAI's error.code
    return error


def clean_metadata(raw: Any) -> dict[str, str] | None:
    """Up to 16 string pairs (keys ≤ 64, values ≤ 512 characters); None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid("Invalid 'metadata': must be an object of string pairs.", "metadata",
                      "invalid_type")
    if len(raw) > MAX_METADATA_PAIRS:
        raise invalid(f"Invalid 'metadata': at most {MAX_METADATA_PAIRS} pairs, got "
                      f"{len(raw)}.", "metadata", "invalid_value")
    for key, value in raw.items():
        if len(key) > MAX_METADATA_KEY:
            raise invalid(f"Invalid 'metadata': key {key[:20]!r}… is longer than "
                          f"{MAX_METADATA_KEY} characters.", "metadata", "invalid_value")
        if not isinstance(value, str):
            raise invalid(f"Invalid 'metadata.{key}': values must be strings.",
                          f"metadata.{key}", "invalid_type")
        if len(value) > MAX_METADATA_VALUE:
            raise invalid(f"Invalid 'metadata.{key}': longer than {MAX_METADATA_VALUE} "
                          "characters.", f"metadata.{key}", "invalid_value")
    return dict(raw)
