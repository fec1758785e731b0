# SPDX-License-Identifier: Apache-2.0
"""A batch's input file: checked once when the run starts, then read line by line.

The check is the Files API's own batch validator (the one uploads pass through) plus
what only the batch knows: every line's ``url`` must be the batch's endpoint. Its
problems are reported in OpenAI's shape, ``{code, message, param, line}``, with the
codes OpenAI documents (``invalid_json_line``, ``duplicate_custom_id``,
``url_mismatch``, ``empty_file``, ``too_many_tasks``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from potluck.batches import conf
from potluck.files import services as files
from potluck.files.models import StoredFile
from potluck.files.validation import BatchValidator

CHUNK_BYTES = 2**20


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


class _EndpointValidator(BatchValidator):
    """The upload validator, plus: each line's url is the batch's endpoint."""

    def __init__(self, endpoint: str, max_lines: int) -> None:
        super().__init__(max_lines=max_lines)
        self.endpoint = endpoint
        self.codes: dict[int, tuple[str, str | None]] = {}

    def check(self, record: dict[str, Any], line: int) -> str | None:
        reason = super().check(record, line)
        if reason is not None:
            duplicate = "is already used on line" in reason
            self.codes[line] = (("duplicate_custom_id", "custom_id") if duplicate
                                else ("invalid_request", None))
            return reason
        if record["url"] != self.endpoint:
            self.codes[line] = ("url_mismatch", "url")
            return (f"the url {record['url']!r} does not match the batch's endpoint "
                    f"{self.endpoint!r}")
        if record["body"].get("stream") is True:
            self.codes[line] = ("invalid_request", "body.stream")
            return ("body.stream is true, but a batch request is answered as one JSON body: "
                    "remove stream")
        return None


def check_input(stored: StoredFile, endpoint: str) -> InputCheck:
    """Read the whole file once; file-level problems come back as OpenAI batch errors."""
    validator = _EndpointValidator(endpoint, conf.max_lines())
    with files.open_file(stored) as handle:
        while chunk := handle.read(CHUNK_BYTES):
            validator.feed(chunk)
            if validator.stopped:
                break
    report = validator.finish()
    found = InputCheck(total=report.records, models=set(report.models))
    for error in report.errors[:conf.MAX_REPORTED_ERRORS]:
        code, param = _code(validator, error.line, error.reason)
        found.errors.append({"code": code, "message": _sentence(error.reason),
                             "param": param, "line": error.line})
    return found


def _code(validator: _EndpointValidator, line: int | None,
          reason: str) -> tuple[str, str | None]:
    if line is None:
        return "empty_file", None
    if line in validator.codes:
        return validator.codes[line]
    if reason.startswith("too many lines"):
        return "too_many_tasks", None
    return "invalid_json_line", None  # not UTF-8, not JSON, not an object, too long


def _sentence(reason: str) -> str:
    text = reason[:1].upper() + reason[1:]
    return text if text.endswith((".", ")")) else text + "."


def read_lines(stored: StoredFile) -> Iterator[InputLine]:
    """The requests of a checked file, in order."""
    for number, record in files.iter_jsonl(stored):
        body = record["body"]
        yield InputLine(number=number, custom_id=record["custom_id"], model=body["model"],
                        body=body)
