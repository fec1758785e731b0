# SPDX-License-Identifier: Apache-2.0
"""API key format and hashing.

A key reads ``pot_<lookup>_<secret>``: the 12-character lookup finds the row by a
unique index, the SHA-256 of the whole key is compared in constant time. Keys carry
256 bits of randomness, so a fast hash is the right one (a slow password hash would
only add latency to every request without adding safety).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

PREFIX = "pot"
LOOKUP_LENGTH = 12
_LOOKUP_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class ParsedKey:
    lookup: str
    raw: str


def generate() -> tuple[str, str]:
    """A new key: (lookup, full secret key)."""
    lookup = "".join(secrets.choice(_LOOKUP_ALPHABET) for _ in range(LOOKUP_LENGTH))
    return lookup, f"{PREFIX}_{lookup}_{secrets.token_urlsafe(32)}"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse(raw: str) -> ParsedKey | None:
    prefix, _, rest = raw.partition("_")
    lookup, _, secret = rest.partition("_")
    if prefix != PREFIX or len(lookup) != LOOKUP_LENGTH or not secret:
        return None
    if any(ch not in _LOOKUP_ALPHABET for ch in lookup):
        return None
    return ParsedKey(lookup=lookup, raw=raw)


def matches(raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(raw), stored_hash)
