# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The issuer's private key, and the one function that signs with it.

The store is on exactly where ``POTLUCK_STORE_ISSUER_KEY_FILE`` names the key's PEM file
(e.g. a mounted secret). The key is read from that file when a licence is signed (kept
in this process's memory, re-read if the file changes) and goes nowhere else: not into
settings, the database, a log line, an error message or an answer. Errors name the
file, never its content. The key must be the private half of the issuer public key
that ships with Potluck (``format.ISSUER_PUBLIC_KEY``), or the store refuses to sign: a
licence nobody can verify is worse than none.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from potluck.errors import PotluckError
from potluck_enterprise.licensing import format
from potluck_enterprise.licensing.licence import Licence

log = logging.getLogger(__name__)


class StoreUnavailable(PotluckError):
    """The store is off here, or its key cannot be used (503). The message names the
    setting or the file, never the key."""

    status = 503


@dataclass(frozen=True)
class _Loaded:
    path: str
    stamp: tuple[int, int, int]  # (inode, size, mtime_ns): re-read when the file changes
    key: Ed25519PrivateKey


_lock = threading.Lock()
_loaded: _Loaded | None = None


def enabled() -> bool:
    """Whether this installation runs the store (the issuer key's file is configured)."""
    return bool(settings.STORE_ISSUER_KEY_FILE)


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@sensitive_variables("pem", "key")  # kept off Django's error reports (DEBUG's page too)
def private_key() -> Ed25519PrivateKey:
    """The issuer's private key; raises ``StoreUnavailable``."""
    global _loaded
    path = settings.STORE_ISSUER_KEY_FILE
    if not path:
        raise StoreUnavailable("the licence store is off on this installation "
                               "(POTLUCK_STORE_ISSUER_KEY_FILE is not set)")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise StoreUnavailable(f"cannot read the issuer key file {path}: "
                               f"{exc.strerror or exc.__class__.__name__}") from None
    stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
    with _lock:
        if _loaded is not None and _loaded.path == path and _loaded.stamp == stamp:
            return _loaded.key
        try:
            with open(path, "rb") as handle:
                pem = handle.read(64 * 1024)
        except OSError as exc:
            raise StoreUnavailable(f"cannot read the issuer key file {path}: "
                                   f"{exc.strerror or exc.__class__.__name__}") from None
        try:
            key = format.load_private_key(pem)
        except PotluckError:
            # The loader's message could quote what it read: say only where.
            raise StoreUnavailable(f"the issuer key file {path} does not hold an "
                                   "unencrypted Ed25519 private key (PEM)") from None
        _loaded = _Loaded(path, stamp, key)
        log.info("licence store: issuer key loaded from %s", path)
        return key


@sensitive_variables("key")
def check() -> str:
    """Load the key and check it against the shipped issuer public key; returns the
    public key's PEM (what installations verify with). Raises ``StoreUnavailable``."""
    key = private_key()
    shipped = format.issuer_public_key()
    if _public_bytes(key.public_key()) != _public_bytes(shipped):
        raise StoreUnavailable(
            f"the issuer key in {settings.STORE_ISSUER_KEY_FILE} is not the private half of "
            "the issuer public key this Potluck ships (licensing/license-public-key.pem): "
            "installations would refuse what it signs")
    return shipped.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@sensitive_variables()
def sign(licence: Licence) -> str:
    """The licence file for ``licence``, signed with the issuer key and checked the way
    an installation checks it (its binding included). Raises ``StoreUnavailable``."""
    check()
    text = format.issue(licence, private_key())
    format.verify(text, now=licence.issued_at, installation_id=licence.installation_id)
    return text


def forget() -> None:
    """Drop the key from this process's memory (tests; a rotated key file is re-read
    anyway)."""
    global _loaded
    with _lock:
        _loaded = None
