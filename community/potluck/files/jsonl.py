# SPDX-License-Identifier: Apache-2.0
"""Streaming JSONL validators for uploaded files: fine-tuning datasets and batch inputs.

A validator is fed the file chunk by chunk (as it streams into storage), so a file is
read once and never held in memory whole. It names each bad line by number (blank
lines are skipped but counted) and stops after ``MAX_ERRORS`` errors.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from potluck.files import conf
from potluck.protocol import endpoints

MAX_ERRORS = 20
# How many errors an exception message spells out; the report keeps them all.
ERRORS_IN_MESSAGE = 5
_BOM = b"\xef\xbb\xbf"

FINE_TUNE_ROLES = ("system", "user", "assistant")
BATCH_URLS = endpoints.PATHS
BATCH_KEYS = ("custom_id", "method", "url", "body")
MAX_CUSTOM_ID_CHARS = 512


class Reason(str):
    """A refusal's text that also carries a stable ``code`` for callers to branch on."""

    code: str

    def __new__(cls, text: str, code: str) -> Reason:
        reason = super().__new__(cls, text)
        reason.code = code
        return reason


# Codes of LineError: callers branch on these, never on the wording of ``reason``.
EMPTY_FILE = "empty_file"
TOO_MANY_LINES = "too_many_lines"
LINE_TOO_LONG = "line_too_long"
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
INVALID_RECORD = "invalid_record"  # the purpose's own rules (roles, url, body, ...)
DUPLICATE_CUSTOM_ID = "duplicate_custom_id"


@dataclass(frozen=True)
class LineError:
    line: int | None  # None: about the whole file
    reason: str
    code: str = INVALID_RECORD

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line is not None else self.reason


@dataclass
class ValidationReport:
    purpose: str
    lines: int = 0  # lines read, blank ones included
    records: int = 0  # non-blank lines: examples (fine-tune) or requests (batch)
    errors: list[LineError] = field(default_factory=list)
    stopped: bool = False  # validation ended early (too many errors or lines)
    # Batch files: the endpoints and models their requests use.
    urls: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    # Fine-tuning files: assistant messages that will be trained on.
    trainable_messages: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def message(self) -> str:
        """One line for an API error: the first errors, with their line numbers."""
        shown = "; ".join(str(error) for error in self.errors[:ERRORS_IN_MESSAGE])
        rest = len(self.errors) - ERRORS_IN_MESSAGE
        if self.stopped and len(self.errors) >= MAX_ERRORS:
            shown += f" (and more: validation stopped after {MAX_ERRORS} errors)"
        elif rest > 0:
            shown += f" (and {rest} more error{'s' if rest > 1 else ''})"
        return f"invalid {self.purpose} file: {shown}"

    def summary(self) -> dict[str, Any]:
        """What is worth keeping with the file once it is accepted."""
        if self.purpose == "batch":
            return {"requests": self.records, "urls": sorted(self.urls),
                    "models": sorted(self.models)}
        return {"examples": self.records, "trainable_messages": self.trainable_messages}


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class JsonlValidator(ABC):
    """Splits a byte stream into lines, parses each as a JSON object, checks each record.

    ``feed()`` chunks in order, then ``finish()``. Subclasses implement ``check``.
    """

    purpose = "jsonl"
    record_noun = "record"

    def __init__(self, *, max_lines: int, max_line_bytes: int | None = None) -> None:
        self.max_lines = max_lines
        self.max_line_bytes = max_line_bytes if max_line_bytes is not None \
            else conf.max_line_bytes()
        self.report = ValidationReport(purpose=self.purpose)
        self._buffer = bytearray()
        self._skipping = False  # inside a line already reported as too long

    @property
    def stopped(self) -> bool:
        return self.report.stopped

    def feed(self, chunk: bytes) -> None:
        start = 0
        while not self.report.stopped:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end == -1 else chunk[start:end]
            self._take(piece)
            if end == -1:
                return
            self._end_line()
            start = end + 1

    def finish(self) -> ValidationReport:
        if not self.report.stopped and (self._buffer or self._skipping):
            self._end_line()  # the last line had no newline
        if not self.report.stopped and self.report.records == 0 and not self.report.errors:
            self._error(None, f"the file is empty: it holds no {self.record_noun}s", EMPTY_FILE)
        return self.report

    @abstractmethod
    def check(self, record: dict[str, Any], line: int) -> str | None:
        """The reason ``record`` is refused, or None. Subclasses collect what they need;
        a plain str is an INVALID_RECORD, a ``Reason`` names its own code."""

    # -- line handling -------------------------------------------------------------

    def _take(self, piece: bytes) -> None:
        if self._skipping or not piece:
            return
        if len(self._buffer) + len(piece) > self.max_line_bytes:
            self._skipping = True
            self._buffer.clear()
            return
        self._buffer += piece

    def _end_line(self) -> None:
        self.report.lines += 1
        number = self.report.lines
        if self._skipping:
            self._skipping = False
            if self._count_record(number):
                self._error(number, f"the line is longer than {self.max_line_bytes} bytes",
                            LINE_TOO_LONG)
            return
        raw = bytes(self._buffer)
        self._buffer.clear()
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        if not raw.strip():
            return
        if not self._count_record(number):
            return
        reason = self._parse_and_check(raw, number)
        if reason:
            self._error(number, reason, getattr(reason, "code", INVALID_RECORD))

    def _count_record(self, number: int) -> bool:
        self.report.records += 1
        if self.report.records > self.max_lines:
            self._error(number, f"too many lines: a {self.purpose} file may hold at most "
                                f"{self.max_lines} {self.record_noun}s", TOO_MANY_LINES)
            self.report.stopped = True
            return False
        return True

    def _parse_and_check(self, raw: bytes, number: int) -> str | None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Reason(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte "
                          f"{exc.start + 1})", INVALID_UTF8)
        try:
            record = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            return Reason(f"not valid JSON ({exc.msg} at column {exc.colno})", INVALID_JSON)
        except ValueError as exc:
            return Reason(f"not valid JSON ({exc})", INVALID_JSON)
        except RecursionError:
            return Reason("not valid JSON (nested too deeply)", INVALID_JSON)
        if not isinstance(record, dict):
            return Reason(f"must be a JSON object, got {_json_type(record)}", NOT_AN_OBJECT)
        return self.check(record, number)

    def _error(self, line: int | None, reason: str, code: str) -> None:
        self.report.errors.append(LineError(line, str(reason), code))
        if len(self.report.errors) >= MAX_ERRORS:
            self.report.stopped = True


class FineTuneValidator(JsonlValidator):
    """Chat examples: ``{"messages": [...]}``, optional leading system, then user and
    assistant alternating, ending with an assistant message that is trained on."""

    purpose = "fine-tune"
    record_noun = "example"

    def __init__(self, *, max_lines: int | None = None,
                 max_line_bytes: int | None = None) -> None:
        super().__init__(max_lines=max_lines if max_lines is not None
                         else settings.FINETUNE_FILE_MAX_LINES, max_line_bytes=max_line_bytes)

    def check(self, record: dict[str, Any], line: int) -> str | None:
        for key in record:
            if key != "messages":
                return (f"unknown key {_show(key)}: a fine-tuning example holds only "
                        '"messages"')
        if "messages" not in record:
            return '"messages" is missing'
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            return f'"messages" must be a non-empty array, got {_show(messages)}'
        trainable = 0
        previous: str | None = None
        for index, message in enumerate(messages):
            where = f"messages[{index}]"
            reason = _message_problem(message, where, index, previous)
            if reason:
                return reason
            if message["role"] == "assistant" and message.get("weight", 1) == 1:
                trainable += 1
            previous = message["role"]
        if previous != "assistant":
            return (f'the last message (messages[{len(messages) - 1}]) must have role '
                    f'"assistant", got "{previous}"')
        if trainable == 0:
            return "no assistant message to train on: every assistant message has weight 0"
        self.report.trainable_messages += trainable
        return None


def _message_problem(message: Any, where: str, index: int, previous: str | None) -> str | None:
    if not isinstance(message, dict):
        return f"{where} must be an object, got {_json_type(message)}"
    for key in message:
        if key not in ("role", "content", "weight"):
            return (f"{where} has an unknown key {_show(key)}: a message holds only "
                    '"role", "content" and, on assistant messages, "weight"')
    if "role" not in message:
        return f"{where}.role is missing"
    role = message["role"]
    if role not in FINE_TUNE_ROLES:
        return (f'{where}.role must be one of "system", "user", "assistant", '
                f"got {_show(role)}")
    if index == 0 and role == "assistant":
        return f'{where}.role must be "system" or "user" (the first message), got "assistant"'
    if index > 0 and role == "system":
        return f'{where}.role "system" is allowed only for the first message'
    if previous in ("system", "assistant") and role != "user":
        article = "an" if previous == "assistant" else "a"
        return f'{where}.role must be "user" after {article} "{previous}" message'
    if previous == "user" and role != "assistant":
        return f'{where}.role must be "assistant" after a "user" message'
    if "content" not in message:
        return f"{where}.content is missing"
    content = message["content"]
    if not isinstance(content, str) or not content.strip():
        return f"{where}.content must be a non-empty string, got {_show(content)}"
    if "weight" in message:
        if role != "assistant":
            return f"{where}.weight is allowed only on assistant messages"
        weight = message["weight"]
        if isinstance(weight, bool) or weight not in (0, 1) or not isinstance(weight, int):
            return f"{where}.weight must be 0 or 1, got {_show(weight)}"
    return None


class BatchValidator(JsonlValidator):
    """Requests: ``{"custom_id", "method": "POST", "url", "body": {"model", ...}}``."""

    purpose = "batch"
    record_noun = "request"

    def __init__(self, *, max_lines: int | None = None,
                 max_line_bytes: int | None = None) -> None:
        super().__init__(max_lines=max_lines if max_lines is not None
                         else settings.BATCH_MAX_LINES, max_line_bytes=max_line_bytes)
        self._custom_ids: dict[str, int] = {}

    def check(self, record: dict[str, Any], line: int) -> str | None:
        for key in record:
            if key not in BATCH_KEYS:
                return (f"unknown key {_show(key)}: a batch request holds only "
                        '"custom_id", "method", "url" and "body"')
        for key in BATCH_KEYS:
            if key not in record:
                return f'"{key}" is missing'
        custom_id, method, url, body = (record[key] for key in BATCH_KEYS)
        if not isinstance(custom_id, str) or not custom_id:
            return f"custom_id must be a non-empty string, got {_show(custom_id)}"
        if len(custom_id) > MAX_CUSTOM_ID_CHARS:
            return f"custom_id is longer than {MAX_CUSTOM_ID_CHARS} characters"
        if custom_id in self._custom_ids:
            return Reason(f"custom_id {_show(custom_id)} is already used on line "
                          f"{self._custom_ids[custom_id]}; each request needs its own",
                          DUPLICATE_CUSTOM_ID)
        if method != "POST":
            return f'method must be "POST", got {_show(method)}'
        if url not in BATCH_URLS:
            allowed = ", ".join(f'"{u}"' for u in BATCH_URLS)
            return f"url must be one of {allowed}, got {_show(url)}"
        if not isinstance(body, dict):
            return f"body must be an object, got {_json_type(body)}"
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return f"body.model must be a non-empty string, got {_show(model)}"
        self._custom_ids[custom_id] = line
        self.report.urls.add(url)
        self.report.models.add(model)
        return None


VALIDATORS: dict[str, type[JsonlValidator]] = {
    FineTuneValidator.purpose: FineTuneValidator,
    BatchValidator.purpose: BatchValidator,
}


def validator_for(purpose: str) -> JsonlValidator:
    try:
        return VALIDATORS[purpose]()  # type: ignore[call-arg]
    except KeyError:
        raise ValueError(f"no validator for purpose {purpose!r}") from None


def validate(purpose: str, chunks: Iterable[bytes]) -> ValidationReport:
    """Validate a whole stream (e.g. a file already stored) in one call."""
    validator = validator_for(purpose)
    for chunk in chunks:
        validator.feed(chunk)
        if validator.stopped:
            break
    return validator.finish()
