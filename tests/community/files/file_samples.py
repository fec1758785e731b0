# SPDX-License-Identifier: Apache-2.0
"""Sample JSONL content for the Files tests."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any


def jsonl(*records: Any) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def chat(user: str = "What is 2+2?", assistant: str = "4",
         system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"messages": messages}


def request(custom_id: str, url: str = "/v1/chat/completions",
            model: str = "demo") -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url,
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]}}


def named(content: bytes, name: str = "data.jsonl") -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def stored_files(root: Path) -> list[Path]:
    """Every file under the storage root, temp files included."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
