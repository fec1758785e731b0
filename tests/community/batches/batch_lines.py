# SPDX-License-Identifier: Apache-2.0
"""Request lines of batch input files, and reading the JSONL files a batch writes."""

from __future__ import annotations

import json
from typing import Any


def request_line(number: int, *, model: str = "fake-model",
                 url: str = "/v1/completions", custom_id: str | None = None,
                 **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id or f"req-{number}", "method": "POST", "url": url,
            "body": {"model": model, "prompt": f"line {number}", "max_tokens": 4, **body}}


def read_jsonl(stored) -> list[dict[str, Any]]:
    from potluck.files import services as files

    with files.open_file(stored) as handle:
        return [json.loads(line) for line in handle.read().splitlines() if line.strip()]
