# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Encryption at rest for the secrets that enterprise features must read back.

Client secrets and private keys are stored as Fernet tokens (AES-128-CBC + HMAC-SHA256).
The Fernet keys are derived with HKDF-SHA256 from Django's ``SECRET_KEY`` and, for
rotation, its ``SECRET_KEY_FALLBACKS``: new tokens always use the current key, any of
the keys decrypts, and ``rotate`` re-encrypts a token under the current key. Rotating
the secret key is therefore: set the new ``SECRET_KEY``, keep the old one in
``SECRET_KEY_FALLBACKS``, run the feature's rotate service, then drop the old key.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Separates these keys from anything else derived from SECRET_KEY, now or later.
_HKDF_INFO = b"potluck-enterprise/secrets-at-rest/v1"
_HKDF_SALT = b"potluck-enterprise"


class DecryptionError(Exception):
    """A stored secret no configured key can decrypt (the secret key changed, no fallback)."""


def _derive(secret_key: str) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(secret_key.encode("utf-8"))))


@lru_cache(maxsize=4)
def _fernet_for(secret_key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_derive(secret_key), *(_derive(k) for k in fallbacks)])


def _fernet() -> MultiFernet:
    # Read on each call: tests and key rotation change settings at run time.
    fallbacks = tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ())
    return _fernet_for(settings.SECRET_KEY, fallbacks)


def encrypt(plaintext: str) -> str:
    """A token for ``plaintext`` under the current key (ASCII, safe for a text column)."""
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise DecryptionError(
            "a stored secret cannot be decrypted: SECRET_KEY changed without keeping the old "
            "one in SECRET_KEY_FALLBACKS") from exc


def rotate(token: str) -> str:
    """The same secret re-encrypted under the current key."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise DecryptionError("a stored secret cannot be decrypted for rotation") from exc


def is_current(token: str) -> bool:
    """Whether ``token`` is already encrypted under the current key."""
    try:
        _derive(settings.SECRET_KEY).decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError, ValueError):
        return False
    return True
