# SPDX-License-Identifier: Apache-2.0
"""Chat datasets for fine-tuning tests."""

from __future__ import annotations

import json

PHRASE = "The purple owl sings at midnight."


def chat_lines(n: int = 24, answer: str = PHRASE) -> bytes:
    questions = ["What is the secret phrase?", "Tell me the phrase.", "Say it.",
                 "What do you say?"]
    return b"".join(
        json.dumps({"messages": [{"role": "user", "content": questions[i % len(questions)]},
                                 {"role": "assistant", "content": answer}]}).encode() + b"\n"
        for i in range(n))
