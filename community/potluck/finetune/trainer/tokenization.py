# SPDX-License-Identifier: Apache-2.0
"""Conversations to token ids and labels: the loss falls on trained assistant tokens only.

Each example is rendered by the base model's own chat template, with its tools, tool
calls, names and roles, as vLLM renders a request to that model. What the template
cannot express is refused, naming the example's line: it raises on the example, or it
renders the same text without the example's ``tools``, an assistant message's
``tool_calls``, a message's ``name``, or a system, developer or tool message (the
template drops them silently; training on that text would teach something else).

Which characters belong to an assistant turn comes from the model's own chat template:
rendering ``messages[:i]`` with the generation prompt gives where turn ``i`` starts, and
rendering ``messages[:i + 1]`` where it ends (its end-of-turn tokens included, so the
model learns to stop). The whole conversation is tokenized once, and a token is trained
when it starts inside such a span. This holds for any template whose rendering of a
prefix of the conversation is a prefix of the rendering of the whole, as typical ones
are; for a template that is not, the turn is found by its content instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from potluck.finetune.dataset import Conversation
from potluck.finetune.trainer.failures import (
    INVALID_BASE_MODEL,
    INVALID_TRAINING_FILE,
    TrainingFailed,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100  # the label that the loss skips
TOKENIZE_CHUNK = 256  # conversations per call to the fast tokenizer


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where no loss is taken


@dataclass(frozen=True)
class TokenizedDataset:
    examples: list[Example]  # those with at least one trained token
    truncated: int  # examples cut to max_seq_len
    skipped: int  # examples left without a trained token (dropped)

    @property
    def tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.examples)


def tokenize_conversations(tokenizer: PreTrainedTokenizerBase,
                           conversations: list[Conversation], max_seq_len: int, *,
                           code: str = INVALID_TRAINING_FILE) -> TokenizedDataset:
    """Token ids and labels of each example (cut to ``max_seq_len``). ``TrainingFailed``
    with ``code`` (the dataset's: training or validation file) names the line of an
    example the template cannot express; ``INVALID_BASE_MODEL`` if it has no template."""
    if not getattr(tokenizer, "chat_template", None):
        raise TrainingFailed(INVALID_BASE_MODEL, "the base model's tokenizer has no chat "
                                                 "template")
    examples: list[Example] = []
    truncated = skipped = 0
    for start in range(0, len(conversations), TOKENIZE_CHUNK):
        chunk = conversations[start:start + TOKENIZE_CHUNK]
        rendered = [_render_with_spans(tokenizer, c, code) for c in chunk]
        encodings = tokenizer([text for text, _ in rendered], add_special_tokens=False,
                              return_offsets_mapping=True)
        for (_, spans), ids, offsets in zip(rendered, encodings["input_ids"],
                                            encodings["offset_mapping"], strict=True):
            labels = _labels(ids, offsets, spans)
            if len(ids) > max_seq_len:
                truncated += 1
                ids, labels = ids[:max_seq_len], labels[:max_seq_len]
            example = Example(list(ids), labels)
            # The first token is never predicted, so it cannot carry the loss.
            if any(label != IGNORE_INDEX for label in labels[1:]):
                examples.append(example)
            else:
                skipped += 1
    return TokenizedDataset(examples, truncated, skipped)


class _Unrenderable(Exception):
    """The template raised on these messages (jinja raises its own errors)."""


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]],
            tools: list[dict[str, Any]] | None, *, generation_prompt: bool) -> str:
    try:
        text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                             add_generation_prompt=generation_prompt)
    except Exception as exc:  # e.g. an unexpected role, or alternation enforced
        raise _Unrenderable(str(exc)) from exc
    return text if isinstance(text, str) else str(text)


def _render_with_spans(tokenizer: PreTrainedTokenizerBase, conversation: Conversation,
                       code: str) -> tuple[str, list[tuple[int, int]]]:
    """The whole conversation as text, and the character spans to train on."""
    messages = conversation.template_messages()
    tools = [dict(tool) for tool in conversation.tools] if conversation.tools else None

    def render(part: list[dict[str, Any]], *, generation_prompt: bool) -> str:
        try:
            return _render(tokenizer, part, tools, generation_prompt=generation_prompt)
        except _Unrenderable as exc:
            raise TrainingFailed(code, f"line {conversation.line}: the base model's chat "
                                       f"template cannot render this example: {exc}") from exc

    full = render(messages, generation_prompt=False)
    dropped = _unexpressed(tokenizer, conversation, messages, tools, full)
    if dropped:
        raise TrainingFailed(code, f"line {conversation.line}: the base model's chat template "
                                   f"does not render {dropped}; train this example on a "
                                   "base model whose template does, or leave it out")
    spans = []
    cursor = 0
    for index, message in enumerate(conversation.messages):
        if not message.trained:
            continue
        before = render(messages[:index], generation_prompt=True)
        through = render(messages[:index + 1], generation_prompt=False)
        if full.startswith(through) and through.startswith(before) and len(before) >= cursor:
            span = (len(before), len(through))
        else:
            found = full.find(message.content, cursor) if message.content else -1
            if found < 0:
                continue
            span = (found, found + len(message.content or ""))
        spans.append(span)
        cursor = span[1]
    return full, spans


def _unexpressed(tokenizer: PreTrainedTokenizerBase, conversation: Conversation,
                 messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                 full: str) -> str | None:
    """What of the example the template leaves out (renders the same without), or None.

    Only what the example uses is probed, so plain user/assistant examples cost nothing.
    """
    def same_without(changed: list[dict[str, Any]],
                     changed_tools: list[dict[str, Any]] | None) -> bool:
        try:
            return _render(tokenizer, changed, changed_tools,
                           generation_prompt=False) == full
        except _Unrenderable:  # it needs what was taken out: so it renders it
            return False

    if tools and same_without(messages, None):
        return '"tools"'
    for index, message in enumerate(conversation.messages):
        for key in ("tool_calls", "name"):
            if key in messages[index]:
                reduced = {k: v for k, v in messages[index].items() if k != key}
                if same_without([*messages[:index], reduced, *messages[index + 1:]], tools):
                    return f"messages[{index}].{key}"
        if message.role in ("system", "developer", "tool") and same_without(
                messages[:index] + messages[index + 1:], tools):
            return f'messages[{index}] (role "{message.role}")'
    return None


def _labels(ids: list[int], offsets: list[Any], spans: list[tuple[int, int]]) -> list[int]:
    labels = [IGNORE_INDEX] * len(ids)
    if not spans:
        return labels
    span_index = 0
    for position, (token_start, token_end) in enumerate(offsets):
        while span_index < len(spans) and token_start >= spans[span_index][1]:
            span_index += 1
        if span_index == len(spans):
            break
        begin, _ = spans[span_index]
        if token_start >= begin and token_end > token_start:
            labels[position] = ids[position]
    return labels
