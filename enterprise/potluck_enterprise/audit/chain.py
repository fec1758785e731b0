# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The hash chain and checkpoint formats, shared by the writer and the offline verifier.

An entry's hash is SHA-256 over its canonical JSON (keys sorted, no spaces, UTF-8):
``chain``, ``seq``, ``created_at`` (ISO 8601, UTC, microseconds), ``kind``, ``action``,
``actor``, ``target``, ``data``, ``content_sha256`` and ``prev_hash`` (the previous
entry's hash; 64 zeros for the first). So changing any field of any entry, removing or
reordering entries, changes every hash after it. A checkpoint signs (Ed25519)
``{"chain", "size", "head_hash", "created_at", "key_id"}`` in the same canonical form:
an auditor holding one can tell that the log still has those ``size`` entries unchanged,
whatever else was rewritten. Content (prompts, answers) is outside the chain; only its
hash is in it, so purging content leaves every entry verifiable.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64
FORMAT = "potluck-audit/1"
ENTRY_FIELDS = ("chain", "seq", "created_at", "kind", "action", "actor", "target", "data",
                "content_sha256", "prev_hash")
CHECKPOINT_FIELDS = ("chain", "size", "head_hash", "created_at", "key_id")


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                      ).encode("utf-8")


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(fields: dict[str, Any]) -> str:
    """The hash of an entry given its ``ENTRY_FIELDS`` (``created_at`` already a string)."""
    return hashlib.sha256(canonical({k: fields[k] for k in ENTRY_FIELDS})).hexdigest()


def key_id(public_pem: bytes) -> str:
    """SHA-256 of the public key's DER form: how a checkpoint names its key."""
    public = serialization.load_pem_public_key(public_pem)
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def sign_checkpoint(fields: dict[str, Any], private_key: Ed25519PrivateKey) -> str:
    return base64.b64encode(private_key.sign(
        canonical({k: fields[k] for k in CHECKPOINT_FIELDS}))).decode("ascii")


def checkpoint_signature_ok(checkpoint: dict[str, Any], public_pem: bytes) -> bool:
    try:
        public = serialization.load_pem_public_key(public_pem)
        if not isinstance(public, Ed25519PublicKey):
            return False
        if checkpoint.get("key_id") != key_id(public_pem):
            return False
        public.verify(base64.b64decode(checkpoint["signature"]),
                      canonical({k: checkpoint[k] for k in CHECKPOINT_FIELDS}))
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return True


def hashlib_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
