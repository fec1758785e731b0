# SPDX-License-Identifier: Apache-2.0
"""OpenAI's chat fine-tuning format (potluck.finetune.dataset): what an example may hold,
every reason a line is refused (named with its line number), and that the trainer reads a
file exactly as the upload checked it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from potluck.files.purposes import validate_upload
from potluck.finetune.dataset import (
    Conversation,
    DatasetInvalid,
    FineTuneValidator,
    read_conversations,
)


def jsonl(*records: Any) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def chat(user: str = "What is 2+2?", assistant: str = "4",
         system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"messages": messages}


def validate(purpose: str, chunks: list[bytes]):
    assert purpose == "fine-tune"
    return validate_upload(purpose, chunks)


GOOD = chat()
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def call(call_id: str = "call_1", arguments: Any = '{"city": "Oslo"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function",
            "function": {"name": "get_weather", "arguments": arguments}}


def tool_example(**extra: Any) -> dict[str, Any]:
    """A user asks, the assistant calls a tool, the tool answers, the assistant replies."""
    return {"messages": [
        {"role": "developer", "content": "Answer with the tool."},
        {"role": "user", "content": [{"type": "text", "text": "Weather"},
                                     {"type": "text", "text": "in Oslo?"}]},
        {"role": "assistant", "tool_calls": [call()], "weight": 1},
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
        {"role": "assistant", "content": "It rains.", "name": "bot"}],
        "tools": [WEATHER_TOOL], "parallel_tool_calls": False, **extra}


def msgs(*pairs: tuple[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


# The bad record is always on line 3, after a good line and a blank one.
BAD_RECORDS = [
    ({"messages": [], "extra": 1},
     'unknown key "extra": a fine-tuning example holds only "messages", "tools" and '
     '"parallel_tool_calls"'),
    ({"prompt": "a", "completion": "b"},
     'unknown key "prompt": a fine-tuning example holds only "messages", "tools" and '
     '"parallel_tool_calls"'),
    ({}, '"messages" is missing'),
    ({"messages": []}, '"messages" must be a non-empty array, got []'),
    ({"messages": "hi"}, '"messages" must be a non-empty array, got "hi"'),
    ({"messages": ["hi"]}, "messages[0] must be an object, got a string"),
    ({"messages": [{"role": "user", "content": "a", "weight": 1},
                   {"role": "assistant", "content": "b"}]},
     'messages[0] has an unknown key "weight": a user message holds only "role", "content", '
     '"name"'),
    ({"messages": [{"content": "a"}]}, "messages[0].role is missing"),
    (msgs(("user", "a"), ("wizard", "b")),
     'messages[1].role must be one of "system", "developer", "user", "assistant", "tool", '
     'got "wizard"'),
    (msgs(("assistant", "a")),
     'messages[0].role must be "system", "developer" or "user" (the first message), got '
     '"assistant"'),
    (msgs(("user", "a"), ("user", "b")),
     'messages[1].role must be "assistant" after a "user" message'),
    (msgs(("system", "s"), ("assistant", "b")),
     'messages[1].role must be "user" after a "system" message'),
    (msgs(("user", "a"), ("assistant", "b"), ("assistant", "c")),
     'messages[2].role must be "user" after an "assistant" message'),
    (msgs(("user", "a"), ("system", "s"), ("assistant", "b")),
     'messages[1].role "system" is allowed only at the start, before the first user message'),
    (msgs(("user", "a"), ("developer", "s"), ("assistant", "b")),
     'messages[1].role "developer" is allowed only at the start, before the first user '
     'message'),
    ({"messages": [{"role": "user"}]}, "messages[0].content is missing"),
    (msgs(("user", "")), 'messages[0].content must be a non-empty string, got ""'),
    (msgs(("user", "  \n")), 'messages[0].content must be a non-empty string, got "  \\n"'),
    (msgs(("user", "a"), ("assistant", None)),
     "messages[1].content must be a non-empty string or text parts, got null"),
    (msgs(("user", [])), "messages[0].content must be a non-empty string or text parts, "
                         "got []"),
    (msgs(("user", [{"type": "text", "text": " "}])),
     'messages[0].content must hold some text, got [{"type": "text", "text": " "}]'),
    (msgs(("user", [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}])),
     "messages[0].content[0]: only text parts can be trained on (Potluck fine-tunes text "
     'models), got type "image_url"'),
    (msgs(("user", [{"type": "text", "text": 1}])),
     "messages[0].content[0].text must be a string, got 1"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "content": "b", "weight": 2}]},
     "messages[1].weight must be 0 or 1, got 2"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "content": "b", "weight": True}]},
     "messages[1].weight must be 0 or 1, got true"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "content": "b", "weight": 0.5}]},
     "messages[1].weight must be 0 or 1, got 0.5"),
    ({"messages": [{"role": "user", "content": "a", "name": ""},
                   {"role": "assistant", "content": "b"}]},
     'messages[0].name must be a non-empty string, got ""'),
    (msgs(("user", "a")), 'the last message (messages[0]) must have role "assistant", got "user"'),
    (msgs(("system", "s")),
     'the last message (messages[0]) must have role "assistant", got "system"'),
    (msgs(("user", "a"), ("assistant", "b"), ("user", "c")),
     'the last message (messages[2]) must have role "assistant", got "user"'),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "content": "b", "weight": 0}]},
     "no assistant message to train on: every assistant message has weight 0"),
    # Tools and tool calls
    (msgs(("user", "a"), ("tool", "b")),
     'messages[1].role "tool" must answer a tool call of the assistant message before it'),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "tool_calls": [call()]},
                   {"role": "assistant", "content": "b"}]},
     'messages[2].role must be "tool": the tool calls of the assistant message before it '
     "are not all answered"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "tool_calls": [call()]},
                   {"role": "tool", "tool_call_id": "call_9", "content": "x"}]},
     'messages[2].tool_call_id must name a call of the assistant message before it that is '
     'not answered yet ("call_1"), got "call_9"'),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "tool_calls": [call()]},
                   {"role": "tool", "content": "x"}]},
     "messages[2].tool_call_id is missing"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "tool_calls": [call()]},
                   {"role": "tool", "tool_call_id": "call_1", "content": "x"},
                   {"role": "user", "content": "b"}]},
     'messages[3].role must be "assistant" after the answers to its tool calls'),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "tool_calls": []}]},
     "messages[1].tool_calls must be a non-empty array, got []"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "tool_calls": [call(arguments="{city")]}]},
     'messages[1].tool_calls[0].function.arguments must be a JSON object, got "{city"'),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "tool_calls": [call(arguments="[1]")]}]},
     'messages[1].tool_calls[0].function.arguments must be a JSON object, got "[1]"'),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "tool_calls": [{**call(), "type": "code"}]}]},
     'messages[1].tool_calls[0].type must be "function", got "code"'),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "tool_calls": [call(), call()]}]},
     'messages[1].tool_calls[1].id "call_1" is used by an earlier call of this example'),
    ({**chat(), "tools": []}, "tools must be a non-empty array, got []"),
    ({**chat(), "tools": [{"type": "function", "function": {"name": "two words"}}]},
     'tools[0].function.name must be 1 to 64 letters, digits, _ or -, got "two words"'),
    ({**chat(), "tools": [WEATHER_TOOL, WEATHER_TOOL]},
     'tools[1].function.name "get_weather" is offered twice'),
    ({**chat(), "parallel_tool_calls": "yes"},
     'parallel_tool_calls must be true or false, got "yes"'),
    # OpenAI's deprecated function calling
    ({**chat(), "functions": [WEATHER_TOOL["function"]]},
     '"functions" is deprecated: give "tools" instead'),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]},
     'messages[1].function_call is deprecated: give "tool_calls" instead'),
    (msgs(("user", "a"), ("function", "b")),
     'messages[1].role "function" is deprecated: answer "tool_calls" with "tool"'),
]


@pytest.mark.parametrize("record,reason", BAD_RECORDS, ids=[r for _, r in BAD_RECORDS])
def test_a_bad_example_is_named_by_its_line_and_reason(record, reason):
    content = jsonl(GOOD) + b"\n" + jsonl(record, GOOD)
    report = validate("fine-tune", [content])
    assert [str(e) for e in report.errors] == [f"line 3: {reason}"]
    assert (report.lines, report.records) == (4, 3)


def test_openai_s_full_chat_format_passes():
    content = jsonl(tool_example(), GOOD, {"messages": [
        {"role": "system", "content": "s"}, {"role": "developer", "content": "d"},
        {"role": "user", "content": "a", "name": "ann"},
        {"role": "assistant", "content": [{"type": "text", "text": "b"}], "weight": 0},
        {"role": "user", "content": "c"},
        # Training the model to call two tools at once, in the last message.
        {"role": "assistant", "tool_calls": [call("x", {"city": "Oslo"}), call("y")]}],
        "tools": [WEATHER_TOOL]})
    report = validate("fine-tune", [content])
    assert report.ok, report.errors
    assert report.summary() == {"examples": 3, "trainable_messages": 4}


def test_an_example_is_kept_as_the_chat_template_will_see_it():
    validator = FineTuneValidator(keep=True)
    validator.feed(b"\n" + jsonl(tool_example()))
    assert validator.finish().ok
    (example,) = validator.conversations
    assert isinstance(example, Conversation) and example.line == 2
    assert example.tools == (WEATHER_TOOL,)
    assert [m.trained for m in example.messages] == [False, False, True, False, True]
    assert example.template_messages() == [
        {"role": "developer", "content": "Answer with the tool."},
        {"role": "user", "content": "Weather\nin Oslo?"},  # parts joined as vLLM joins them
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "rain", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "It rains.", "name": "bot"}]


def test_a_file_the_upload_accepts_is_read_alike_by_the_trainer(org, tmp_path, settings):
    """One reader: the bytes an upload accepted (a UTF-8 BOM, CRLF line ends, blank
    lines, no last newline) give the trainer the same examples, on the same lines."""
    from potluck.files import services as files

    settings.FILE_STORAGE_ROOT = str(tmp_path / "files")
    content = (b"\xef\xbb\xbf" + jsonl(chat(user="one")).replace(b"\n", b"\r\n") + b"\n"
               + jsonl(tool_example()) + jsonl(chat(user="three")).rstrip(b"\n"))
    stored = files.create_file(org, upload=io.BytesIO(content), filename="bom.jsonl",
                               purpose="fine-tune")
    assert stored.line_count == 3
    copy = tmp_path / "train.jsonl"  # as the node agent copies it next to the trainer
    with files.open_file(stored) as source:
        copy.write_bytes(source.read())
    read = read_conversations(copy)
    assert [c.line for c in read] == [1, 3, 4]
    assert [c.messages[0].content for c in read] == ["one", "Answer with the tool.", "three"]


def test_the_trainer_s_reader_names_the_lines_the_upload_would_refuse(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl(GOOD) + b"\n" + jsonl(msgs(("user", "a"))) + b"{no\n")
    with pytest.raises(DatasetInvalid) as refused:
        read_conversations(bad)
    assert str(refused.value) == (
        'line 3: the last message (messages[0]) must have role "assistant", got "user"; '
        "line 4: not valid JSON (Expecting property name enclosed in double quotes at "
        "column 2)")


def test_good_examples_pass_and_are_counted():
    weighted = {"messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "x", "weight": 0},
        {"role": "user", "content": "b"}, {"role": "assistant", "content": "y", "weight": 1},
        {"role": "user", "content": "c"}, {"role": "assistant", "content": "z"}]}
    content = jsonl(GOOD, chat(system="You add numbers."), weighted)
    report = validate("fine-tune", [content])
    assert report.ok, report.errors
    assert (report.lines, report.records) == (3, 3)
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
    assert error.reason.endswith("…") and len(error.reason) < 160
