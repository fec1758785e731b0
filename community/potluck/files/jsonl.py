# SPDX-License-Identifier: Apache-2.0
"""The streaming JSONL framework that every uploaded file's check is built on.

A validator is fed the file chunk by chunk (as it streams into storage), so a file is
read once and never held in memory whole. It splits lines (``\n``; a ``\r`` before it and
a UTF-8 BOM at the start are allowed), decodes and parses each as a JSON object, names
each bad line by number (blank lines are skipped but counted) and stops after
``MAX_ERRORS`` errors. What a record must hold is the purpose's own schema, a subclass
that lives in the app that owns the purpose (``potluck.finetune.dataset``,
``potluck.batches.input``) and reads the file through the same class when it uses it.

Pure Python (no Django): the fine-tuning trainer, which runs without settings or a
database, reads its dataset through it too.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_ERRORS = 20
# How many errors an exception message spells out; the report keeps them all.
ERRORS_IN_MESSAGE = 5
_BOM = b"\xef\xbb\xbf"


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
INVALID_RECORD = "invalid_record"  # the purpose's own rules (roles, url, body, ...);
# a schema may name finer codes of its own (e.g. ``duplicate_custom_id``).


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
    # What is worth keeping with an accepted file (the schema's ``summary()``).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def describe(self) -> str:
        """The first errors with their line numbers, and how many more there are."""
        shown = "; ".join(str(error) for error in self.errors[:ERRORS_IN_MESSAGE])
        rest = len(self.errors) - ERRORS_IN_MESSAGE
        if self.stopped and len(self.errors) >= MAX_ERRORS:
            shown += f" (and more: validation stopped after {MAX_ERRORS} errors)"
        elif rest > 0:
            shown += f" (and {rest} more error{'s' if rest > 1 else ''})"
        return shown

    def message(self) -> str:
        """One line for an API error: ``invalid <purpose> file: <describe()>``."""
        return f"invalid {self.purpose} file: {self.describe()}"

    def summary(self) -> dict[str, Any]:
        """What is worth keeping with the file once it is accepted."""
        return dict(self.details)


def show(value: Any, limit: int = 60) -> str:
    """A value as JSON for a reason's text, shortened past ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_type(value: Any) -> str:
    """A value's JSON type with its article, for a reason's text ("an array")."""
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

    ``feed()`` chunks in order, then ``finish()``. Subclasses implement ``check`` (and
    ``summary``). ``max_lines`` (records) and ``max_line_bytes``: None is no limit; the
    upload's limits come from settings (``potluck.files.purposes``).
    """

    purpose = "jsonl"
    record_noun = "record"

    def __init__(self, *, max_lines: int | None = None,
                 max_line_bytes: int | None = None) -> None:
        self.max_lines = max_lines
        self.max_line_bytes = max_line_bytes
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
        self.report.details = self.summary()
        return self.report

    @abstractmethod
    def check(self, record: dict[str, Any], line: int) -> str | None:
        """The reason ``record`` is refused, or None. Subclasses collect what they need;
        a plain str is an INVALID_RECORD, a ``Reason`` names its own code."""

    def summary(self) -> dict[str, Any]:
        """What is worth keeping with an accepted file (stored as ``StoredFile.summary``)."""
        return {"records": self.report.records}

    # -- line handling -------------------------------------------------------------

    def _take(self, piece: bytes) -> None:
        if self._skipping or not piece:
            return
        if (self.max_line_bytes is not None
                and len(self._buffer) + len(piece) > self.max_line_bytes):
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
        if self.max_lines is not None and self.report.records > self.max_lines:
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
            return Reason(f"must be a JSON object, got {json_type(record)}", NOT_AN_OBJECT)
        return self.check(record, number)

    def _error(self, line: int | None, reason: str, code: str) -> None:
        self.report.errors.append(LineError(line, str(reason), code))
        if len(self.report.errors) >= MAX_ERRORS:
            self.report.stopped = True


def validate(validator: JsonlValidator, chunks: Iterable[bytes]) -> ValidationReport:
    """Feed a whole stream (e.g. a file already stored) to ``validator`` and finish."""
    for chunk in chunks:
        validator.feed(chunk)
        if validator.stopped:
            break
    return validator.finish()


def read_file(validator: JsonlValidator, path: str | Path,
              chunk_bytes: int = 2**20) -> ValidationReport:
    """Validate a file on disk, chunk by chunk. ``OSError`` when it cannot be read."""
    with Path(path).open("rb") as handle:
        return validate(validator, iter(lambda: handle.read(chunk_bytes), b""))
