# SPDX-License-Identifier: Apache-2.0
"""A batch's input file: its format, checked at upload and again when the run starts,
then read line by line.

``BatchValidator`` is the format (OpenAI's batch input line: ``custom_id``, ``method``,
``url``, ``body``); the Files API checks uploads of purpose ``batch`` with it (registered
in ``BatchesConfig.ready``). The run checks the file again with the same class plus what
only the batch knows: every line's ``url`` must be the batch's endpoint. Its problems are
reported in OpenAI's shape, ``{code, message, param, line}``, with the codes OpenAI
documents (``invalid_json_line``, ``duplicate_custom_id``, ``url_mismatch``,
``empty_file``, ``too_many_tasks``), chosen by each error's reason code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from potluck.batches import conf
from potluck.files import conf as files_conf
from potluck.files import jsonl
from potluck.files import services as files
from potluck.files.jsonl import JsonlValidator, Reason, show
from potluck.files.models import StoredFile
from potluck.protocol import endpoints

CHUNK_BYTES = 2**20
PURPOSE = "batch"
KEYS = ("custom_id", "method", "url", "body")
MAX_CUSTOM_ID_CHARS = 512
# Reason codes of this format (besides the framework's, in potluck.files.jsonl).
DUPLICATE_CUSTOM_ID = "duplicate_custom_id"
URL_MISMATCH = "url_mismatch"
STREAMING = "streaming_request"
# A LineError's code → OpenAI's batch error code and param; others: invalid_json_line.
_OPENAI_CODES: dict[str, tuple[str, str | None]] = {
    jsonl.EMPTY_FILE: ("empty_file", None),
    jsonl.TOO_MANY_LINES: ("too_many_tasks", None),
    DUPLICATE_CUSTOM_ID: ("duplicate_custom_id", "custom_id"),
    URL_MISMATCH: ("url_mismatch", "url"),
    STREAMING: ("invalid_request", "body.stream"),
    jsonl.INVALID_RECORD: ("invalid_request", None),
}


@dataclass(frozen=True)
class InputLine:
    number: int  # 1-based, blank lines counted (as the validator and OpenAI count)
    custom_id: str
    model: str
    body: dict[str, Any]


@dataclass
class InputCheck:
    total: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    models: set[str] = field(default_factory=set)


class BatchValidator(JsonlValidator):
    """Requests: ``{"custom_id", "method": "POST", "url", "body": {"model", ...}}``, each
    ``custom_id`` once per file; ``url`` one of the endpoints batches serve."""

    purpose = PURPOSE
    record_noun = "request"

    def __init__(self, *, max_lines: int | None = None,
                 max_line_bytes: int | None = None) -> None:
        super().__init__(max_lines=max_lines, max_line_bytes=max_line_bytes)
        self._custom_ids: dict[str, int] = {}
        self.urls: set[str] = set()
        self.models: set[str] = set()

    def check(self, record: dict[str, Any], line: int) -> str | None:
        for key in record:
            if key not in KEYS:
                return (f"unknown key {show(key)}: a batch request holds only "
                        '"custom_id", "method", "url" and "body"')
        for key in KEYS:
            if key not in record:
                return f'"{key}" is missing'
        custom_id, method, url, body = (record[key] for key in KEYS)
        if not isinstance(custom_id, str) or not custom_id:
            return f"custom_id must be a non-empty string, got {show(custom_id)}"
        if len(custom_id) > MAX_CUSTOM_ID_CHARS:
            return f"custom_id is longer than {MAX_CUSTOM_ID_CHARS} characters"
        if custom_id in self._custom_ids:
            return Reason(f"custom_id {show(custom_id)} is already used on line "
                          f"{self._custom_ids[custom_id]}; each request needs its own",
                          DUPLICATE_CUSTOM_ID)
        if method != "POST":
            return f'method must be "POST", got {show(method)}'
        if url not in endpoints.PATHS:
            allowed = ", ".join(f'"{u}"' for u in endpoints.PATHS)
            return f"url must be one of {allowed}, got {show(url)}"
        if not isinstance(body, dict):
            return f"body must be an object, got {jsonl.json_type(body)}"
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return f"body.model must be a non-empty string, got {show(model)}"
        if body.get("stream") is True:  # OpenAI's Batch API answers each line whole
            return Reason("body.stream is true, but a batch request is answered as one JSON "
                          "body: remove stream", STREAMING)
        self._custom_ids[custom_id] = line
        self.urls.add(url)
        self.models.add(model)
        return None

    def summary(self) -> dict[str, Any]:
        return {"requests": self.report.records, "urls": sorted(self.urls),
                "models": sorted(self.models)}


def upload_validator() -> BatchValidator:
    """The check of one upload of purpose ``batch``, with the configured limits."""
    return BatchValidator(max_lines=conf.max_lines(),
                          max_line_bytes=files_conf.max_line_bytes())


class _EndpointValidator(BatchValidator):
    """The upload's check, plus: each line's url is the batch's endpoint."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(max_lines=conf.max_lines(),
                         max_line_bytes=files_conf.max_line_bytes())
        self.endpoint = endpoint

    def check(self, record: dict[str, Any], line: int) -> str | None:
        reason = super().check(record, line)
        if reason is None and record["url"] != self.endpoint:
            return Reason(f"the url {record['url']!r} does not match the batch's endpoint "
                          f"{self.endpoint!r}", URL_MISMATCH)
        return reason


def check_input(stored: StoredFile, endpoint: str) -> InputCheck:
    """Read the whole file once; file-level problems come back as OpenAI batch errors."""
    validator = _EndpointValidator(endpoint)
    with files.open_file(stored) as handle:
        report = jsonl.validate(validator, iter(lambda: handle.read(CHUNK_BYTES), b""))
    found = InputCheck(total=report.records, models=set(validator.models))
    for error in report.errors[:conf.MAX_REPORTED_ERRORS]:
        code, param = _OPENAI_CODES.get(error.code, ("invalid_json_line", None))
        found.errors.append({"code": code, "message": _sentence(error.reason),
                             "param": param, "line": error.line})
    return found


def _sentence(reason: str) -> str:
    text = reason[:1].upper() + reason[1:]
    return text if text.endswith((".", ")")) else text + "."


def read_lines(stored: StoredFile) -> Iterator[InputLine]:
    """The requests of a checked file, in order."""
    for number, record in files.iter_jsonl(stored):
        body = record["body"]
        yield InputLine(number=number, custom_id=record["custom_id"], model=body["model"],
                        body=body)
