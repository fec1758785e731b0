# SPDX-License-Identifier: Apache-2.0
"""/v1/files: OpenAI's Files API (upload, list, retrieve, content, delete)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, BinaryIO

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from potluck.errors import InvalidInput
from potluck.files import selectors, services
from potluck.files.models import StoredFile
from potluck.openai_api.base import MAX_LIST_LIMIT, OpenAIView, paginate

CONTENT_CHUNK_BYTES = 2**20


def render_file(stored: StoredFile) -> dict[str, Any]:
    """A file object exactly as OpenAI's."""
    return {
        "id": stored.id,
        "object": "file",
        "bytes": stored.bytes,
        "created_at": int(stored.created_at.timestamp()),
        "expires_at": int(stored.expires_at.timestamp()) if stored.expires_at else None,
        "filename": stored.filename,
        "purpose": stored.purpose,
        "status": stored.status,
        "status_details": stored.status_details or None,
    }


def expires_after_seconds(data: Any) -> int | None:
    """OpenAI's optional ``expires_after[anchor]`` / ``expires_after[seconds]`` form fields."""
    anchor = data.get("expires_after[anchor]")
    seconds = data.get("expires_after[seconds]")
    if anchor in (None, "") and seconds in (None, ""):
        return None
    if anchor != "created_at":
        raise InvalidInput('expires_after.anchor must be "created_at"',
                           field="expires_after.anchor")
    try:
        return int(seconds)
    except (TypeError, ValueError):
        raise InvalidInput("expires_after.seconds must be an integer",
                           field="expires_after.seconds") from None


class FilesView(OpenAIView):
    def get(self, request: Request) -> Response:
        files = selectors.list_files(self.tenant.organization,
                                    purpose=request.query_params.get("purpose") or None)
        # OpenAI lists up to 10,000 files by default; our pages stop at MAX_LIST_LIMIT.
        return Response(paginate(request, files, render_file, default_limit=MAX_LIST_LIMIT))

    def post(self, request: Request) -> Response:
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput('a file is required: send it as the multipart field "file"',
                               field="file")
        purpose = request.data.get("purpose")
        if not purpose:
            raise InvalidInput("purpose is required", field="purpose")
        stored = services.create_file(
            self.tenant.organization, upload=upload, filename=upload.name or "",
            purpose=purpose, created_by_key=self.tenant.api_key, created_by=self.tenant.user,
            expires_after_seconds=expires_after_seconds(request.data))
        return Response(render_file(stored))


class FileView(OpenAIView):
    def get(self, request: Request, file_id: str) -> Response:
        return Response(render_file(selectors.get_file(self.tenant.organization, file_id)))

    def delete(self, request: Request, file_id: str) -> Response:
        stored = services.delete_file(self.tenant.organization, file_id)
        return Response({"id": stored.id, "object": "file", "deleted": True})


class AnyAccept(DefaultContentNegotiation):
    """The content endpoint answers bytes whatever the client accepts (the OpenAI SDK sends
    ``Accept: application/binary``); its errors are still JSON."""

    def select_renderer(self, request: Request, renderers: list[BaseRenderer],
                        format_suffix: str | None = None) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class FileContentView(OpenAIView):
    content_negotiation_class = AnyAccept

    def get(self, request: Request, file_id: str) -> HttpResponseBase:
        stored = selectors.get_file(self.tenant.organization, file_id)
        handle = services.open_file(stored)
        if isinstance(request._request, ASGIRequest):
            # Under ASGI a synchronous iterator would be read whole into memory first.
            response: HttpResponseBase = StreamingHttpResponse(
                _read_async(handle), content_type="application/octet-stream")
            response["Content-Disposition"] = content_disposition_header(True, stored.filename)
        else:
            response = FileResponse(handle, as_attachment=True, filename=stored.filename,
                                    content_type="application/octet-stream")
        response["Content-Length"] = str(stored.bytes)
        return response


async def _read_async(handle: BinaryIO) -> AsyncIterator[bytes]:
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        while chunk := await read(CONTENT_CHUNK_BYTES):
            yield chunk
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()
