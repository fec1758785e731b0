# SPDX-License-Identifier: Apache-2.0
"""The chat fine-tuning dataset: OpenAI's format, checked at upload and read by the trainer
through the same class, so a file the upload accepts is a file the trainer reads alike.

Each line is one example (OpenAI's "chat" fine-tuning format, supervised method)::

    {"messages": [...], "tools": [...]?, "parallel_tool_calls": bool?}

- ``messages``: optional ``system``/``developer`` messages first, then ``user`` and
  ``assistant`` turns, ending with an ``assistant`` message. An assistant message may
  call tools (``tool_calls``); each call is answered by a ``tool`` message naming its
  ``tool_call_id`` before the next assistant message.
- ``content``: a non-empty string, or an array of text parts
  (``{"type": "text", "text": ...}``, joined with newlines as vLLM joins them when it
  serves the model). An assistant message with ``tool_calls`` may have no content.
  Potluck trains text models: image, audio and file parts are refused.
- ``weight`` (assistant messages only): 1 (trained on, the default) or 0 (context only).
- ``name`` on system, developer, user and assistant messages; ``tools`` as in the Chat
  Completions API (functions). The deprecated ``functions``, ``function_call`` and role
  ``function`` are refused, naming their replacements.

Whether a base model can express an example (its chat template renders tools, tool
calls, names and each role) is known only once the model is: the trainer checks that
when it renders the examples (``potluck.finetune.trainer.tokenization``) and refuses,
naming the line, what the template cannot express.

Pure Python: the trainer imports this without Django. Source of the format:
https://platform.openai.com/docs/api-reference/fine-tuning/chat-input
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from potluck.files.jsonl import JsonlValidator, ValidationReport, json_type, read_file, show

PURPOSE = "fine-tune"
INSTRUCTION_ROLES = ("system", "developer")
ROLES = ("system", "developer", "user", "assistant", "tool")
EXAMPLE_KEYS = ("messages", "tools", "parallel_tool_calls")
MESSAGE_KEYS = {
    "system": ("role", "content", "name"),
    "developer": ("role", "content", "name"),
    "user": ("role", "content", "name"),
    "assistant": ("role", "content", "name", "tool_calls", "weight"),
    "tool": ("role", "content", "tool_call_id"),
}
# OpenAI's deprecated function-calling fields, and what replaced them.
DEPRECATED = {"functions": '"tools"', "function_call": '"tool_calls"'}
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FUNCTION_KEYS = ("name", "description", "parameters", "strict")


@dataclass(frozen=True)
class Message:
    """One message as the chat template sees it; ``content`` is text (parts joined)."""

    role: str
    content: str | None
    trained: bool = False  # an assistant message whose weight is not 0
    name: str | None = None
    tool_calls: tuple[dict[str, Any], ...] | None = None  # arguments as objects
    tool_call_id: str | None = None

    def as_template_dict(self) -> dict[str, Any]:
        """The message in the shape Hugging Face chat templates (and vLLM) use."""
        message: dict[str, Any] = {"role": self.role, "content": self.content or ""}
        if self.name is not None:
            message["name"] = self.name
        if self.tool_calls is not None:
            message["tool_calls"] = [dict(call) for call in self.tool_calls]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        return message


@dataclass(frozen=True)
class Conversation:
    """One example: its messages, the tools it offers, and the line it came from."""

    line: int
    messages: tuple[Message, ...]
    tools: tuple[dict[str, Any], ...] | None = None

    def template_messages(self) -> list[dict[str, Any]]:
        return [message.as_template_dict() for message in self.messages]


class FineTuneValidator(JsonlValidator):
    """Checks chat examples; with ``keep=True`` it also keeps each as a ``Conversation``
    (the trainer's reading), otherwise it holds nothing per line (the upload's check)."""

    purpose = PURPOSE
    record_noun = "example"

    def __init__(self, *, max_lines: int | None = None, max_line_bytes: int | None = None,
                 keep: bool = False) -> None:
        super().__init__(max_lines=max_lines, max_line_bytes=max_line_bytes)
        self.keep = keep
        self.conversations: list[Conversation] = []
        self.trainable_messages = 0

    def check(self, record: dict[str, Any], line: int) -> str | None:
        for key in record:
            if key in DEPRECATED:
                return f'"{key}" is deprecated: give {DEPRECATED[key]} instead'
            if key not in EXAMPLE_KEYS:
                return (f"unknown key {show(key)}: a fine-tuning example holds only "
                        '"messages", "tools" and "parallel_tool_calls"')
        if "parallel_tool_calls" in record and not isinstance(record["parallel_tool_calls"],
                                                              bool):
            return ("parallel_tool_calls must be true or false, got "
                    f"{show(record['parallel_tool_calls'])}")
        tools = record.get("tools")
        if tools is not None:
            reason = _tools_problem(tools)
            if reason:
                return reason
        if "messages" not in record:
            return '"messages" is missing'
        parsed = _Messages(record["messages"]).parse()
        if isinstance(parsed, str):
            return parsed
        trainable = sum(1 for message in parsed if message.trained)
        if trainable == 0:
            return "no assistant message to train on: every assistant message has weight 0"
        self.trainable_messages += trainable
        if self.keep:
            self.conversations.append(Conversation(
                line=line, messages=tuple(parsed),
                tools=tuple(tools) if tools is not None else None))
        return None

    def summary(self) -> dict[str, Any]:
        return {"examples": self.report.records, "trainable_messages": self.trainable_messages}


class DatasetInvalid(Exception):
    """The file is not a valid fine-tuning dataset; ``report`` names the lines."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.describe())
        self.report = report


def read_conversations(path: str | Path) -> list[Conversation]:
    """Every example of a dataset file, in order: the trainer's reading.

    No size limits (the upload applied the configured ones). Raises ``DatasetInvalid``
    naming the bad lines, and ``OSError`` when the file cannot be read.
    """
    validator = FineTuneValidator(keep=True)
    report = read_file(validator, path)
    if not report.ok:
        raise DatasetInvalid(report)
    return validator.conversations


class _Messages:
    """The checks of one example's ``messages``, in order; ``parse`` returns the parsed
    messages, or the reason they are refused."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.previous: Message | None = None
        self.pending_calls: list[str] = []  # ids of the last tool calls not answered yet
        self.call_ids: set[str] = set()

    def parse(self) -> list[Message] | str:
        raw = self.raw
        if not isinstance(raw, list) or not raw:
            return f'"messages" must be a non-empty array, got {show(raw)}'
        parsed: list[Message] = []
        for index, item in enumerate(raw):
            message = self._message(item, f"messages[{index}]")
            if isinstance(message, str):
                return message
            parsed.append(message)
            self.previous = message
        last = parsed[-1]
        if last.role != "assistant":
            return (f"the last message (messages[{len(parsed) - 1}]) must have role "
                    f'"assistant", got "{last.role}"')
        return parsed

    def _message(self, item: Any, where: str) -> Message | str:
        if not isinstance(item, dict):
            return f"{where} must be an object, got {json_type(item)}"
        if "role" not in item:
            return f"{where}.role is missing"
        role = item["role"]
        if role == "function":
            return f'{where}.role "function" is deprecated: answer "tool_calls" with "tool"'
        if role not in ROLES:
            allowed = ", ".join(f'"{r}"' for r in ROLES)
            return f"{where}.role must be one of {allowed}, got {show(role)}"
        for key in item:
            if key in DEPRECATED:
                return f'{where}.{key} is deprecated: give {DEPRECATED[key]} instead'
            if key not in MESSAGE_KEYS[role]:
                allowed = ", ".join(f'"{k}"' for k in MESSAGE_KEYS[role])
                return f"{where} has an unknown key {show(key)}: a {role} message holds only " \
                       f"{allowed}"
        reason = self._order(role, where)
        if reason:
            return reason
        name = item.get("name")
        if "name" in item and (not isinstance(name, str) or not name):
            return f"{where}.name must be a non-empty string, got {show(name)}"
        if role == "assistant":
            return self._assistant(item, where, name)
        content = _text(item, where, required=True)
        if not isinstance(content, tuple):
            return content
        if role == "tool":
            call_id = item.get("tool_call_id")
            if "tool_call_id" not in item:
                return f"{where}.tool_call_id is missing"
            if call_id not in self.pending_calls:
                waiting = ", ".join(show(c) for c in self.pending_calls)
                return (f"{where}.tool_call_id must name a call of the assistant message "
                        f"before it that is not answered yet ({waiting}), got {show(call_id)}")
            self.pending_calls.remove(call_id)
            return Message(role, content[0], tool_call_id=call_id)
        return Message(role, content[0], name=name)

    def _order(self, role: str, where: str) -> str | None:
        """Instructions first, then user → assistant turns; tool calls answered in between."""
        previous = self.previous.role if self.previous else None
        if role in INSTRUCTION_ROLES:
            if previous not in (None, *INSTRUCTION_ROLES):
                return (f'{where}.role "{role}" is allowed only at the start, before the '
                        "first user message")
            return None
        if previous is None and role != "user":
            return f'{where}.role must be "system", "developer" or "user" (the first ' \
                   f'message), got "{role}"'
        if self.pending_calls:
            if role != "tool":
                return (f'{where}.role must be "tool": the tool calls of the assistant '
                        f"message before it are not all answered")
            return None
        if role == "tool":
            return (f'{where}.role "tool" must answer a tool call of the assistant message '
                    "before it")
        if previous == "tool" and role != "assistant":
            return f'{where}.role must be "assistant" after the answers to its tool calls'
        if previous in INSTRUCTION_ROLES and role != "user":
            return f'{where}.role must be "user" after a "{previous}" message'
        if previous == "assistant" and role != "user":
            return f'{where}.role must be "user" after an "assistant" message'
        if previous == "user" and role != "assistant":
            return f'{where}.role must be "assistant" after a "user" message'
        return None

    def _assistant(self, item: dict[str, Any], where: str, name: str | None) -> Message | str:
        calls = None
        if "tool_calls" in item:
            calls = _tool_calls(item["tool_calls"], f"{where}.tool_calls", self.call_ids)
            if isinstance(calls, str):
                return calls
        content = _text(item, where, required=calls is None)
        if not isinstance(content, tuple):
            return content
        weight = item.get("weight", 1)
        if "weight" in item and (isinstance(weight, bool) or not isinstance(weight, int)
                                 or weight not in (0, 1)):
            return f"{where}.weight must be 0 or 1, got {show(weight)}"
        if calls is not None:
            self.pending_calls = [call["id"] for call in calls]
        return Message("assistant", content[0], trained=weight == 1, name=name,
                       tool_calls=tuple(calls) if calls is not None else None)


def _text(item: dict[str, Any], where: str, *, required: bool) -> tuple[str | None] | str:
    """A message's text as a 1-tuple (``(None,)``: no content), or the reason it is bad."""
    if "content" not in item or item["content"] is None:
        if required:
            if "content" not in item:
                return f"{where}.content is missing"
            return f"{where}.content must be a non-empty string or text parts, got null"
        return (None,)
    content = item["content"]
    if isinstance(content, str):
        if not content.strip() and required:
            return f"{where}.content must be a non-empty string, got {show(content)}"
        return (content,)
    if not isinstance(content, list) or not content:
        return f"{where}.content must be a non-empty string or text parts, got {show(content)}"
    texts = []
    for number, part in enumerate(content):
        at = f"{where}.content[{number}]"
        if not isinstance(part, dict):
            return f"{at} must be an object, got {json_type(part)}"
        kind = part.get("type")
        if kind != "text":
            return (f"{at}: only text parts can be trained on (Potluck fine-tunes text "
                    f"models), got type {show(kind)}")
        for key in part:
            if key not in ("type", "text"):
                return f'{at} has an unknown key {show(key)}: a text part holds "type", "text"'
        text = part.get("text")
        if not isinstance(text, str):
            return f"{at}.text must be a string, got {show(text)}"
        texts.append(text)
    joined = "\n".join(texts)
    if not joined.strip() and required:
        return f"{where}.content must hold some text, got {show(content)}"
    return (joined,)


def _tool_calls(raw: Any, where: str, seen: set[str]) -> list[dict[str, Any]] | str:
    """An assistant message's calls, with ``arguments`` parsed into objects (as vLLM hands
    them to the chat template), or the reason they are refused."""
    if not isinstance(raw, list) or not raw:
        return f"{where} must be a non-empty array, got {show(raw)}"
    calls = []
    for index, call in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(call, dict):
            return f"{at} must be an object, got {json_type(call)}"
        for key in call:
            if key not in ("id", "type", "function"):
                return f'{at} has an unknown key {show(key)}: a tool call holds "id", ' \
                       '"type" and "function"'
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            return f"{at}.id must be a non-empty string, got {show(call_id)}"
        if call_id in seen:
            return f"{at}.id {show(call_id)} is used by an earlier call of this example"
        if call.get("type") != "function":
            return f'{at}.type must be "function", got {show(call.get("type"))}'
        function = call.get("function")
        if not isinstance(function, dict):
            return f"{at}.function must be an object, got {json_type(function)}"
        for key in function:
            if key not in ("name", "arguments"):
                return (f"{at}.function has an unknown key {show(key)}: it holds "
                        '"name" and "arguments"')
        name = function.get("name")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            return (f"{at}.function.name must be 1 to 64 letters, digits, _ or -, got "
                    f"{show(name)}")
        given = function.get("arguments")
        arguments = given
        if isinstance(given, str):
            try:
                arguments = json.loads(given)
            except ValueError:
                arguments = None
        if not isinstance(arguments, dict):
            return f"{at}.function.arguments must be a JSON object, got {show(given)}"
        seen.add(call_id)
        calls.append({"id": call_id, "type": "function",
                      "function": {"name": name, "arguments": arguments}})
    return calls


def _tools_problem(tools: Any) -> str | None:
    if not isinstance(tools, list) or not tools:
        return f"tools must be a non-empty array, got {show(tools)}"
    names: set[str] = set()
    for index, tool in enumerate(tools):
        at = f"tools[{index}]"
        if not isinstance(tool, dict):
            return f"{at} must be an object, got {json_type(tool)}"
        for key in tool:
            if key not in ("type", "function"):
                return f'{at} has an unknown key {show(key)}: a tool holds "type" and ' \
                       '"function"'
        if tool.get("type") != "function":
            return f'{at}.type must be "function", got {show(tool.get("type"))}'
        function = tool.get("function")
        if not isinstance(function, dict):
            return f"{at}.function must be an object, got {json_type(function)}"
        for key in function:
            if key not in FUNCTION_KEYS:
                allowed = ", ".join(f'"{k}"' for k in FUNCTION_KEYS)
                return f"{at}.function has an unknown key {show(key)}: it holds {allowed}"
        name = function.get("name")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            return (f"{at}.function.name must be 1 to 64 letters, digits, _ or -, got "
                    f"{show(name)}")
        if name in names:
            return f"{at}.function.name {show(name)} is offered twice"
        names.add(name)
        if "description" in function and not isinstance(function["description"], str):
            return f"{at}.function.description must be a string"
        if "parameters" in function and not isinstance(function["parameters"], dict):
            return f"{at}.function.parameters must be a JSON Schema object"
        if "strict" in function and not isinstance(function["strict"], bool):
            return f"{at}.function.strict must be true or false"
    return None
