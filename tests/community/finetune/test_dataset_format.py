# SPDX-License-Identifier: Apache-2.0
"""Every reason a fine-tuning line is refused, named with its line number."""

from __future__ import annotations

import json
from typing import Any

import pytest
from file_samples import chat, jsonl

from potluck.files.validation import FineTuneValidator, validate

GOOD = chat()


def msgs(*pairs: tuple[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


# The bad record is always on line 3, after a good line and a blank one.
BAD_RECORDS = [
    ({"messages": [], "extra": 1},
     'unknown key "extra": a fine-tuning example holds only "messages"'),
    ({"prompt": "a", "completion": "b"},
     'unknown key "prompt": a fine-tuning example holds only "messages"'),
    ({}, '"messages" is missing'),
    ({"messages": []}, '"messages" must be a non-empty array, got []'),
    ({"messages": "hi"}, '"messages" must be a non-empty array, got "hi"'),
    ({"messages": ["hi"]}, "messages[0] must be an object, got a string"),
    ({"messages": [{"role": "user", "content": "a", "name": "bob"}]},
     'messages[0] has an unknown key "name": a message holds only "role", "content" and, '
     'on assistant messages, "weight"'),
    ({"messages": [{"content": "a"}]}, "messages[0].role is missing"),
    (msgs(("user", "a"), ("tool", "b")),
     'messages[1].role must be one of "system", "user", "assistant", got "tool"'),
    (msgs(("assistant", "a")),
     'messages[0].role must be "system" or "user" (the first message), got "assistant"'),
    (msgs(("user", "a"), ("user", "b")),
     'messages[1].role must be "assistant" after a "user" message'),
    (msgs(("system", "s"), ("assistant", "b")),
     'messages[1].role must be "user" after a "system" message'),
    (msgs(("user", "a"), ("assistant", "b"), ("assistant", "c")),
     'messages[2].role must be "user" after an "assistant" message'),
    (msgs(("user", "a"), ("system", "s"), ("assistant", "b")),
     'messages[1].role "system" is allowed only for the first message'),
    ({"messages": [{"role": "user"}]}, "messages[0].content is missing"),
    (msgs(("user", "")), 'messages[0].content must be a non-empty string, got ""'),
    (msgs(("user", "  \n")), 'messages[0].content must be a non-empty string, got "  \\n"'),
    (msgs(("user", "a"), ("assistant", None)),
     "messages[1].content must be a non-empty string, got null"),
    (msgs(("user", [{"type": "text", "text": "a"}])),
     'messages[0].content must be a non-empty string, got [{"type": "text", "text": "a"}]'),
    ({"messages": [{"role": "user", "content": "a", "weight": 1},
                   {"role": "assistant", "content": "b"}]},
     "messages[0].weight is allowed only on assistant messages"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "content": "b", "weight": 2}]},
     "messages[1].weight must be 0 or 1, got 2"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "content": "b", "weight": True}]},
     "messages[1].weight must be 0 or 1, got true"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "content": "b", "weight": 0.5}]},
     "messages[1].weight must be 0 or 1, got 0.5"),
    (msgs(("user", "a")), 'the last message (messages[0]) must have role "assistant", got "user"'),
    (msgs(("system", "s")),
     'the last message (messages[0]) must have role "assistant", got "system"'),
    (msgs(("user", "a"), ("assistant", "b"), ("user", "c")),
     'the last message (messages[2]) must have role "assistant", got "user"'),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "content": "b", "weight": 0}]},
     "no assistant message to train on: every assistant message has weight 0"),
]


@pytest.mark.parametrize("record,reason", BAD_RECORDS, ids=[r for _, r in BAD_RECORDS])
def test_a_bad_example_is_named_by_its_line_and_reason(record, reason):
    content = jsonl(GOOD) + b"\n" + jsonl(record, GOOD)
    report = validate("fine-tune", [content])
    assert [str(e) for e in report.errors] == [f"line 3: {reason}"]
    assert (report.lines, report.records) == (4, 3)


def test_good_examples_pass_and_are_counted():
    weighted = {"messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "x", "weight": 0},
        {"role": "user", "content": "b"}, {"role": "assistant", "content": "y", "weight": 1},
        {"role": "user", "content": "c"}, {"role": "assistant", "content": "z"}]}
    content = jsonl(GOOD, chat(system="You add numbers."), weighted)
    report = validate("fine-tune", [content])
    assert report.ok, report.errors
    assert (report.lines, report.records, report.trainable_messages) == (3, 3, 4)
    assert report.summary() == {"examples": 3, "trainable_messages": 4}


def test_each_bad_line_is_reported_and_good_ones_between_are_not():
    content = jsonl(GOOD, msgs(("user", "a")), GOOD, {"messages": 1}, GOOD)
    report = validate("fine-tune", [content])
    assert [(e.line, e.reason.split(" ")[0]) for e in report.errors] == [
        (2, "the"), (4, '"messages"')]
    assert report.message() == (
        'invalid fine-tune file: line 2: the last message (messages[0]) must have role '
        '"assistant", got "user"; line 4: "messages" must be a non-empty array, got 1')


def test_the_line_count_limit_applies_to_examples():
    validator = FineTuneValidator(max_lines=2)
    validator.feed(jsonl(GOOD, GOOD) + b"\n\n" + jsonl(GOOD))
    report = validator.finish()
    assert [str(e) for e in report.errors] == [
        "line 5: too many lines: a fine-tune file may hold at most 2 examples"]
    assert report.stopped


def test_long_values_are_shortened_in_reasons():
    report = validate("fine-tune", [jsonl(msgs(("user", "a"), (json.dumps("x" * 500), "b")))])
    (error,) = report.errors
    assert error.reason.endswith("…") and len(error.reason) < 140
