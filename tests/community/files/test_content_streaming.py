# SPDX-License-Identifier: Apache-2.0
"""/v1/files/<id>/content streams in chunks under ASGI (production) as under WSGI."""

from __future__ import annotations

import math

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from file_samples import chat, content_under_asgi, jsonl, named

from potluck.files import services
from potluck.files.api import CONTENT_CHUNK_BYTES

pytestmark = pytest.mark.django_db

BIG = jsonl(*(chat(user=f"question {i}", assistant="x" * 64) for i in range(30_000)))


def test_content_is_streamed_chunk_by_chunk_under_asgi(org, key_for):
    assert len(BIG) > 2 * CONTENT_CHUNK_BYTES
    stored = services.create_file(org, upload=named(BIG), filename="big.jsonl",
                                  purpose="fine-tune")
    response, chunks = content_under_asgi(stored.id, key_for(org, ["read"]))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(BIG))
    assert response["Content-Disposition"] == 'attachment; filename="big.jsonl"'
    assert len(chunks) == math.ceil(len(BIG) / CONTENT_CHUNK_BYTES)
    assert b"".join(chunks) == BIG


def test_a_missing_file_under_asgi_is_a_json_404(org, key_for):
    key = key_for(org)

    async def fetch() -> object:
        return await AsyncClient().get(
            "/v1/files/file-missing/content",
            headers={"Authorization": f"Bearer {key}", "Accept": "application/binary"})

    response = async_to_sync(fetch)()
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such File object: file-missing"
