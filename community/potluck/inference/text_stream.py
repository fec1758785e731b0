# SPDX-License-Identifier: Apache-2.0
"""A stream transformer for the generated text itself, with a bounded hold-back.

Redaction and filters work on text, but a stream delivers text in pieces: a card number
may arrive as ``"4111 11"``, ``"11 1111 1"``, ``"111 1111"``. ``TextTransformer`` keeps,
per choice, the text not sent yet; each new piece is appended, the whole held text is
rewritten (``rewrite``), and all but its last ``hold_back`` characters are sent. So a
pattern of at most ``hold_back + 1`` characters is always seen whole by ``rewrite``
before any of it leaves, and the client waits for at most ``hold_back`` characters.
Held text is sent when its choice finishes (``finish_reason``) or the stream ends; that
last time it goes through ``rewrite_final`` (by default ``rewrite``), so a subclass that
leaves a match at the very end of the held text alone (more text could still extend it)
knows when no more is coming.

Works on chat completion chunks (``choices[i].delta.content``) and text completion
chunks (``choices[i].text``), OpenAI's streaming shapes; other events pass unchanged.
``rewrite`` must be idempotent on its own output (a placeholder such as ``[CARD]`` must
not match again), since held text is rewritten again with the next piece appended.
"""

from __future__ import annotations

import copy
from typing import Any

from potluck.inference.policies import StreamTransformer


class TextTransformer(StreamTransformer):
    """Subclass: set ``hold_back`` (characters) and override ``rewrite`` (and ``tail``
    for text to add at the end of each choice, e.g. a disclaimer)."""

    hold_back: int = 0

    def __init__(self) -> None:
        self._held: dict[int, str] = {}
        self._template: dict[str, Any] | None = None

    def rewrite(self, text: str) -> str:
        """The text as it may be sent (e.g. with identifiers replaced)."""
        return text

    def rewrite_final(self, text: str) -> str:
        """The last held text of a choice, once no more will come (default: ``rewrite``)."""
        return self.rewrite(text)

    def tail(self, index: int) -> str:
        """Text added at the end of choice ``index`` (empty: nothing)."""
        return ""

    async def on_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        choices = event.get("choices")
        if not isinstance(choices, list) or not choices:
            return [event]
        self._template = event
        keep = False
        for choice in choices:
            if not isinstance(choice, dict):
                keep = True
                continue
            index = choice.get("index", 0)
            index = index if isinstance(index, int) else 0
            field, text = _text_of(choice)
            finished = choice.get("finish_reason") is not None
            if field is None and not finished:
                keep = True  # a role, tool call or other delta: not text
                continue
            held = self._held.get(index, "") + (text or "")
            if finished:
                send, self._held[index] = self.rewrite_final(held) + self.tail(index), ""
            else:
                held = self.rewrite(held)
                cut = max(0, len(held) - self.hold_back)
                send, self._held[index] = held[:cut], held[cut:]
            _set_text(choice, field or _default_field(event), send)
            if send or finished or _has_other_fields(choice, field):
                keep = True
        return [event] if keep else []

    async def on_end(self) -> list[dict[str, Any]]:
        """Held text of choices that never finished (the stream ended first)."""
        if self._template is None:
            return []
        out = []
        for index, held in sorted(self._held.items()):
            text = self.rewrite_final(held) + (self.tail(index) if held else "")
            if not text:
                continue
            event = copy.deepcopy(self._template)
            choice: dict[str, Any] = {"index": index, "finish_reason": None}
            field = _default_field(event)
            if field == "delta":
                choice["delta"] = {"content": text}
            else:
                choice["text"] = text
            event["choices"] = [choice]
            event.pop("usage", None)
            out.append(event)
        self._held.clear()
        return out


def _default_field(event: dict[str, Any]) -> str:
    return "delta" if event.get("object") == "chat.completion.chunk" else "text"


def _text_of(choice: dict[str, Any]) -> tuple[str | None, str | None]:
    """(``"delta"`` or ``"text"``, the text) of a choice, or (None, None) without text."""
    delta = choice.get("delta")
    if isinstance(delta, dict) and isinstance(delta.get("content"), str):
        return "delta", delta["content"]
    if isinstance(choice.get("text"), str):
        return "text", choice["text"]
    return None, None


def _set_text(choice: dict[str, Any], field: str, text: str) -> None:
    if field == "delta":
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = choice["delta"] = {}
        delta["content"] = text
    else:
        choice["text"] = text


def _has_other_fields(choice: dict[str, Any], field: str | None) -> bool:
    """A choice that carries more than text (a role, tool calls) must still be sent."""
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return any(key != "content" and value not in (None, "")
                   for key, value in delta.items())
    return False
