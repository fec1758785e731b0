# SPDX-License-Identifier: Apache-2.0
"""TextTransformer: a pattern split across stream events is rewritten before any of it is
sent, and what is held back never exceeds ``hold_back`` characters."""

from __future__ import annotations

import asyncio

from potluck.inference.text_stream import TextTransformer


class RedactDigits(TextTransformer):
    hold_back = 15  # a 16-digit number is caught whole

    def rewrite(self, text: str) -> str:
        import re

        return re.sub(r"\d{16}", "[CARD]", text)

    def tail(self, index: int) -> str:
        return " (checked)"


def chunk(text: str, *, finish: str | None = None, index: int = 0) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": index, "delta": {"content": text}, "finish_reason": finish}]}


def stream(transformer: TextTransformer, pieces: list[dict]) -> tuple[str, list[int]]:
    async def go() -> tuple[str, list[int]]:
        out, held = [], []
        for event in pieces:
            for sent in await transformer.on_event(event):
                out.append(sent["choices"][0]["delta"].get("content") or "")
            held.append(sum(len(t) for t in transformer._held.values()))
        for sent in await transformer.on_end():
            out.append(sent["choices"][0]["delta"]["content"])
        return "".join(out), held

    return asyncio.run(go())


def test_a_card_number_split_over_three_events_never_leaves():
    text, held = stream(RedactDigits(), [chunk("pay 4111 with 41111111"), chunk("1111"),
                                         chunk("1111 now"), chunk(".", finish="stop")])
    assert text == "pay 4111 with [CARD] now. (checked)"
    assert max(held) <= RedactDigits.hold_back


def test_held_text_of_an_unfinished_stream_is_sent_at_the_end():
    text, _ = stream(RedactDigits(), [chunk("tail 12345")])
    assert text == "tail 12345 (checked)"


def test_events_with_more_than_text_are_kept_and_choices_are_apart():
    role = {"id": "c", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}

    async def go() -> list[dict]:
        t = RedactDigits()
        out = await t.on_event(role)
        out += await t.on_event(chunk("1234567812345678", index=1, finish="stop"))
        return out

    out = asyncio.run(go())
    assert out[0] is role
    assert out[1]["choices"][0]["delta"]["content"] == "[CARD] (checked)"


class KeepsTrailingDigits(TextTransformer):
    """Leaves digits at the very end of held text alone until it is the last of it."""

    hold_back = 8

    def rewrite(self, text: str) -> str:
        import re

        return re.sub(r"\d{4,}(?=\D)", "[N]", text)

    def rewrite_final(self, text: str) -> str:
        import re

        return re.sub(r"\d{4,}", "[N]", text)


def test_the_last_held_text_goes_through_rewrite_final():
    text, _ = stream(KeepsTrailingDigits(), [chunk("call 1234"), chunk("5678",
                                                                       finish="stop")])
    assert text == "call [N]"
    ended, _ = stream(KeepsTrailingDigits(), [chunk("call 12345678")])  # no finish_reason
    assert ended == "call [N]"
