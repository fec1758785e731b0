# SPDX-License-Identifier: Apache-2.0
"""Every reason a batch input line is refused, and what a good file tells the caller.

The format lives in potluck.batches.input; the Files API checks batch uploads with it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from potluck.batches.input import BatchValidator
from potluck.files.purposes import validate_upload


def jsonl(*records: Any) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def request(custom_id: str, url: str = "/v1/chat/completions",
            model: str = "demo") -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url,
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]}}


def validate(purpose: str, chunks: list[bytes]):
    assert purpose == "batch"
    return validate_upload(purpose, chunks)


GOOD = request("first")


def changed(**fields) -> dict:
    record = request("bad")
    for key, value in fields.items():
        if value is ...:
            record.pop(key)
        else:
            record[key] = value
    return record


URLS = '"/v1/chat/completions", "/v1/completions", "/v1/embeddings"'
BAD_RECORDS = [
    (changed(headers={}),
     'unknown key "headers": a batch request holds only "custom_id", "method", "url" and '
     '"body"'),
    (changed(custom_id=...), '"custom_id" is missing'),
    (changed(method=...), '"method" is missing'),
    (changed(url=...), '"url" is missing'),
    (changed(body=...), '"body" is missing'),
    (changed(custom_id=""), 'custom_id must be a non-empty string, got ""'),
    (changed(custom_id=7), "custom_id must be a non-empty string, got 7"),
    (changed(custom_id="x" * 513), "custom_id is longer than 512 characters"),
    (changed(custom_id="first"),
     'custom_id "first" is already used on line 1; each request needs its own'),
    (changed(method="GET"), 'method must be "POST", got "GET"'),
    (changed(method="post"), 'method must be "POST", got "post"'),
    (changed(url="/v1/responses"), f'url must be one of {URLS}, got "/v1/responses"'),
    (changed(url="/v1/chat/completions/"),
     f'url must be one of {URLS}, got "/v1/chat/completions/"'),
    (changed(body=[]), "body must be an object, got an array"),
    (changed(body="{}"), "body must be an object, got a string"),
    (changed(body={"messages": []}), "body.model must be a non-empty string, got null"),
    (changed(body={"model": ""}), 'body.model must be a non-empty string, got ""'),
    (changed(body={"model": ["a"]}), 'body.model must be a non-empty string, got ["a"]'),
]


@pytest.mark.parametrize("record,reason", BAD_RECORDS, ids=[r[:60] for _, r in BAD_RECORDS])
def test_a_bad_request_is_named_by_its_line_and_reason(record, reason):
    content = jsonl(GOOD) + b"\n" + jsonl(record, request("last"))
    report = validate("batch", [content])
    assert [str(e) for e in report.errors] == [f"line 3: {reason}"]


def test_a_good_file_reports_its_urls_and_models():
    content = jsonl(request("a"), request("b", model="other"),
                    request("c", url="/v1/embeddings"), request("d", url="/v1/completions"))
    validator = BatchValidator()
    validator.feed(content)
    report = validator.finish()
    assert report.ok, report.errors
    assert report.records == 4
    assert validator.urls == {"/v1/chat/completions", "/v1/embeddings", "/v1/completions"}
    assert validator.models == {"demo", "other"}
    assert report.summary() == validate("batch", [content]).summary() == {
        "requests": 4, "urls": ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"],
        "models": ["demo", "other"]}


def test_a_duplicate_is_told_by_its_reason_code_not_its_wording():
    validator = BatchValidator()
    validator.feed(jsonl(request("a"), request("b"), request("a")))
    (error,) = validator.finish().errors
    assert (error.line, error.code) == (3, "duplicate_custom_id")


def test_a_refused_line_does_not_reserve_its_custom_id():
    content = jsonl({**request("a"), "method": "GET"}, request("a"))
    report = validate("batch", [content])
    assert [e.line for e in report.errors] == [1]


def test_at_most_the_configured_number_of_requests(settings):
    settings.BATCH_MAX_LINES = 3
    report = validate("batch", [jsonl(*(request(str(i)) for i in range(4)))])
    assert [str(e) for e in report.errors] == [
        "line 4: too many lines: a batch file may hold at most 3 requests"]
    assert BatchValidator(max_lines=4).max_lines == 4
