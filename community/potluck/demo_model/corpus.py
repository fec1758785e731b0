# SPDX-License-Identifier: Apache-2.0
"""The demo model's training text: the documentation that ships with Python itself.

``pydoc_data.topics`` is part of the standard library on every machine, so the demo
model builds offline, and its text is under the Python Software Foundation licence.
"""

from __future__ import annotations

import hashlib


def corpus_documents() -> list[str]:
    """The help topics (about 465,000 characters), in sorted-key order."""
    from pydoc_data.topics import topics

    return [topics[key] for key in sorted(topics)]


def corpus_sha256(documents: list[str]) -> str:
    """A digest of the text, so a cached build from another Python's docs is not reused."""
    digest = hashlib.sha256()
    for document in documents:
        digest.update(document.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()
