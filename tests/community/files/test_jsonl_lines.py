# SPDX-License-Identifier: Apache-2.0
"""Line-level checks shared by every purpose (potluck.files.jsonl): encoding, JSON, shape,
length, numbering; the purposes' validators come from the apps that own them."""

from __future__ import annotations

import pytest
from file_samples import chat, jsonl, request

from potluck.batches.input import BatchValidator
from potluck.files.jsonl import MAX_ERRORS
from potluck.files.purposes import validate_upload as validate
from potluck.finetune.dataset import FineTuneValidator

GOOD_LINE = jsonl(chat())


def errors(content: bytes, purpose: str = "fine-tune", chunk: int | None = None) -> list[str]:
    chunks = [content[i:i + chunk] for i in range(0, len(content), chunk)] if chunk \
        else [content]
    return [str(e) for e in validate(purpose, chunks).errors]


@pytest.mark.parametrize("line,reason", [
    (b'{"messages": [\xff]}', "not valid UTF-8 (byte 0xff at byte 15)"),
    (b'{"messages": [}', "not valid JSON (Expecting value at column 15)"),
    (b'{"messages": []', "not valid JSON (Expecting ',' delimiter at column 16)"),
    (b"messages", "not valid JSON (Expecting value at column 1)"),
    (b'{"messages": NaN}', "not valid JSON (NaN is not valid JSON)"),
    (b"[1, 2]", "must be a JSON object, got an array"),
    (b'"text"', "must be a JSON object, got a string"),
    (b"42", "must be a JSON object, got a number"),
    (b"null", "must be a JSON object, got null"),
    (b"true", "must be a JSON object, got a boolean"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON (nested too deeply)"),
])
def test_a_line_that_is_not_a_json_object(line, reason):
    assert errors(GOOD_LINE + line + b"\n" + GOOD_LINE) == [f"line 2: {reason}"]
    batch = jsonl(request("a")) + line + b"\n" + jsonl(request("b"))
    assert errors(batch, purpose="batch") == [f"line 2: {reason}"]


def test_blank_lines_are_skipped_but_numbered():
    content = b"\n  \n" + GOOD_LINE + b"\r\n\t\n" + b"{bad}\n\n"
    report = validate("fine-tune", [content])
    assert [str(e) for e in report.errors] == [
        "line 6: not valid JSON (Expecting property name enclosed in double quotes at column 2)"]
    assert (report.lines, report.records) == (7, 2)


def test_crlf_line_ends_a_bom_and_a_missing_last_newline_are_accepted():
    content = b"\xef\xbb\xbf" + GOOD_LINE.replace(b"\n", b"\r\n") + GOOD_LINE.rstrip(b"\n")
    report = validate("fine-tune", [content])
    assert report.ok, report.errors
    assert (report.lines, report.records) == (2, 2)


def test_an_empty_file_is_refused():
    assert errors(b"") == ["the file is empty: it holds no examples"]
    assert errors(b"\n \n\r\n", purpose="batch") == ["the file is empty: it holds no requests"]


def test_a_line_longer_than_the_limit_is_named_and_later_lines_still_checked():
    long_line = jsonl(chat(user="x" * 300))
    content = GOOD_LINE + long_line + b"{bad}\n" + long_line.rstrip(b"\n")
    for chunk in (None, 7, 1):
        validator = FineTuneValidator(max_line_bytes=200)
        for piece in ([content] if chunk is None else
                      [content[i:i + chunk] for i in range(0, len(content), chunk)]):
            validator.feed(piece)
        report = validator.finish()
        assert [str(e) for e in report.errors] == [
            "line 2: the line is longer than 200 bytes",
            "line 3: not valid JSON (Expecting property name enclosed in double quotes at "
            "column 2)",
            "line 4: the line is longer than 200 bytes"], chunk
        assert (report.lines, report.records) == (4, 4)


def test_a_line_exactly_at_the_limit_is_accepted():
    line = GOOD_LINE.rstrip(b"\n")
    validator = FineTuneValidator(max_line_bytes=len(line))
    validator.feed(line + b"\n" + line)
    assert validator.finish().ok


def test_lines_split_across_chunks_anywhere_validate_the_same():
    content = jsonl(request("a"), request("b"), {"custom_id": "a", "method": "POST",
                                                 "url": "/v1/embeddings",
                                                 "body": {"model": "m", "input": "é"}})
    expected = ['line 3: custom_id "a" is already used on line 1; each request needs its own']
    for size in (1, 2, 3, 5, 64, len(content)):
        assert errors(content, purpose="batch", chunk=size) == expected, size


def test_validation_stops_after_max_errors():
    content = b"{bad}\n" * (MAX_ERRORS + 10)
    validator = BatchValidator()
    for line in content.splitlines(keepends=True):
        validator.feed(line)
    report = validator.finish()
    assert len(report.errors) == MAX_ERRORS and report.stopped
    assert report.lines == MAX_ERRORS
    assert report.message().endswith(
        f"(and more: validation stopped after {MAX_ERRORS} errors)")
    assert report.message().count("line ") == 5


def test_the_message_counts_errors_it_does_not_spell_out():
    report = validate("batch", [b"{bad}\n" * 7])
    assert report.message().startswith("invalid batch file: line 1: not valid JSON")
    assert report.message().endswith("line 5: not valid JSON (Expecting property name "
                                     "enclosed in double quotes at column 2) (and 2 more "
                                     "errors)")


def test_each_error_carries_a_stable_code():
    content = (jsonl(request("a")) + b"\xff\n" + b"{\n" + b"[]\n" + jsonl(request("a"))
               + jsonl({**request("b"), "method": "GET"}) + b"x" * 300 + b"\n")
    validator = BatchValidator(max_line_bytes=250)
    validator.feed(content)
    report = validator.finish()
    assert [(e.line, e.code) for e in report.errors] == [
        (2, "invalid_utf8"), (3, "invalid_json"), (4, "not_an_object"),
        (5, "duplicate_custom_id"), (6, "invalid_record"), (7, "line_too_long")]
    assert [e.code for e in validate("batch", [b"\n"]).errors] == ["empty_file"]
    assert [e.code for e in BatchValidator(max_lines=1).finish().errors] == ["empty_file"]
    too_many = BatchValidator(max_lines=1)
    too_many.feed(jsonl(request("a"), request("b")))
    assert [(e.line, e.code) for e in too_many.finish().errors] == [(2, "too_many_lines")]
