# SPDX-License-Identifier: Apache-2.0
"""DRF's JSON parser with a nesting limit (``potluck.jsonbody``): the one JSON parser of
every Django view, /api and the OpenAI-shaped /v1 views alike."""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from potluck import jsonbody


class JSONParser(parsers.JSONParser):
    """Parses ``application/json`` bodies with orjson, refusing bodies that nest more than
    ``jsonbody.DEFAULT_MAX_DEPTH`` levels.

    Raises DRF's ``ParseError`` (a 400, rendered as ``{"detail": ...}`` on /api and as
    OpenAI's error object on /v1) for bad JSON and for too deep JSON alike.
    """

    max_depth = jsonbody.DEFAULT_MAX_DEPTH

    def parse(self, stream: IO[bytes], media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read()
        try:
            if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
                raw = raw.decode(encoding)
            return jsonbody.loads(raw, max_depth=self.max_depth)
        except (jsonbody.InvalidJSON, UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
