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


def content_under_asgi(file_id: str, key: str) -> tuple[Any, list[bytes]]:
    """GET /v1/files/<id>/content through Django's ASGI handler: the response and the
    chunks it streamed. Fails if Django had to read a synchronous iterator whole."""
    import warnings

    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    async def fetch() -> tuple[Any, list[bytes]]:
        response = await AsyncClient().get(
            f"/v1/files/{file_id}/content",
            headers={"Authorization": f"Bearer {key}", "Accept": "application/binary"})
        return response, [chunk async for chunk in response.streaming_content]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django warns, then reads the file whole
        return async_to_sync(fetch)()
