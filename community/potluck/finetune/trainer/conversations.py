# SPDX-License-Identifier: Apache-2.0
"""Reading a chat dataset: JSONL lines of ``{"messages": [{"role", "content", "weight"?}]}``.

The API validates uploads already; the trainer checks the shape again because a file can
change on disk, and a run that fails should say which line is wrong rather than crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from potluck.finetune.trainer.failures import TrainingFailed

ROLES = ("system", "user", "assistant", "tool", "developer")


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    trained: bool  # an assistant message whose weight is not 0

    def as_template_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


Conversation = tuple[Message, ...]


def read_conversations(path: str | Path, code: str) -> list[Conversation]:
    """The conversations of a JSONL file; ``TrainingFailed(code, ...)`` names a bad line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TrainingFailed(code, f"cannot read {Path(path).name}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise TrainingFailed(code, f"the file is not UTF-8 text: {exc.reason}") from exc
    conversations = [_parse_line(line, number, code)
                     for number, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if not conversations:
        raise TrainingFailed(code, "the file holds no examples")
    return conversations


def _parse_line(line: str, number: int, code: str) -> Conversation:
    def bad(reason: str) -> TrainingFailed:
        return TrainingFailed(code, f"line {number}: {reason}")

    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise bad(f"not valid JSON ({exc.msg})") from exc
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        raise bad('expected an object with a "messages" list')
    messages = []
    for index, item in enumerate(record["messages"]):
        if not isinstance(item, dict):
            raise bad(f"messages[{index}] is not an object")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise bad(f"messages[{index}].role must be one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise bad(f"messages[{index}].content must be a string")
        weight = item.get("weight", 1)
        if weight not in (0, 1) or isinstance(weight, bool):
            raise bad(f"messages[{index}].weight must be 0 or 1")
        messages.append(Message(role, content, trained=role == "assistant" and weight == 1))
    if not any(m.role == "assistant" for m in messages):
        raise bad("the conversation has no assistant message")
    return tuple(messages)
