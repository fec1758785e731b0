# SPDX-License-Identifier: Apache-2.0
"""Examples become token ids and labels through the base model's own chat template: the
loss falls on trained assistant turns only (tool calls included), and what the template
cannot express is refused naming the line. The demo model's template (built by the
tests) renders any role but neither tools, tool calls nor names; a variant of it that
renders tools shows the same examples train where a template can express them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from potluck.finetune.dataset import Conversation, Message, read_conversations
from potluck.finetune.trainer.failures import TrainingFailed
from potluck.finetune.trainer.tokenization import IGNORE_INDEX, tokenize_conversations

# The demo template with tools (as JSON, before the conversation) and tool calls.
TOOLS_TEMPLATE = (
    "{{ bos_token }}{% if tools %}<|tools|>\n{{ tools | tojson }}{{ eos_token }}\n{% endif %}"
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' }}"
    "{% for call in message.get('tool_calls') or [] %}<call>{{ call['function']['name'] }} "
    "{{ call['function']['arguments'] | tojson }}</call>{% endfor %}"
    "{{ message['content'] + eos_token + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")
WEATHER = {"type": "function", "function": {"name": "get_weather",
                                            "parameters": {"type": "object"}}}


def read(tmp_path: Path, *examples: dict[str, Any]) -> list[Conversation]:
    """The examples as the trainer reads a dataset file (line 1 blank: lines count)."""
    path = tmp_path / "train.jsonl"
    path.write_text("\n" + "".join(json.dumps(e) + "\n" for e in examples))
    return read_conversations(path)


def trained_text(tokenizer: Any, conversation: Conversation) -> str:
    example = tokenize_conversations(tokenizer, [conversation], 512).examples[0]
    return tokenizer.decode([t for t, label in zip(example.input_ids, example.labels,
                                                   strict=True) if label != IGNORE_INDEX])


def tool_call_example(**extra: Any) -> dict[str, Any]:
    return {"messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        {"role": "assistant", "content": "It rains.", "weight": 0}], **extra}


@pytest.fixture
def tools_tokenizer(demo_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    tokenizer.chat_template = TOOLS_TEMPLATE
    return tokenizer


def test_labels_cover_only_assistant_turns_with_a_nonzero_weight(demo_tokenizer):
    conversation = Conversation(line=1, messages=(
        Message("user", "Hello?"), Message("assistant", "Skip me."),
        Message("user", "Again?"), Message("assistant", "Learn me.", trained=True)))
    assert trained_text(demo_tokenizer, conversation) == "Learn me.<|eos|>\n"
    short = tokenize_conversations(demo_tokenizer, [conversation], 8)
    assert (short.truncated, short.skipped, short.examples) == (1, 1, [])


def test_developer_messages_and_text_parts_render_on_the_demo_template(demo_tokenizer,
                                                                       tmp_path):
    (conversation,) = read(tmp_path, {"messages": [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Two"},
                                     {"type": "text", "text": "parts?"}]},
        {"role": "assistant", "content": "Yes."}]})
    example = tokenize_conversations(demo_tokenizer, [conversation], 512).examples[0]
    text = demo_tokenizer.decode(example.input_ids)
    assert "<|developer|>\nBe brief.<|eos|>\n<|user|>\nTwo\nparts?<|eos|>\n" in text
    assert trained_text(demo_tokenizer, conversation) == "Yes.<|eos|>\n"


@pytest.mark.parametrize(("example", "dropped"), [
    (tool_call_example(tools=[WEATHER]), '"tools"'),
    (tool_call_example(), "messages[1].tool_calls"),
    ({"messages": [{"role": "user", "content": "Hi", "name": "ann"},
                   {"role": "assistant", "content": "Hello."}]}, "messages[0].name"),
])
def test_what_the_demo_template_cannot_express_is_refused_naming_the_line(
        demo_tokenizer, tmp_path, example, dropped):
    conversations = read(tmp_path, {"messages": [{"role": "user", "content": "a"},
                                                 {"role": "assistant", "content": "b"}]},
                         example)
    with pytest.raises(TrainingFailed) as refused:
        tokenize_conversations(demo_tokenizer, conversations, 512,
                               code="invalid_validation_file")
    assert refused.value.code == "invalid_validation_file"
    assert refused.value.message == (
        f"line 3: the base model's chat template does not render {dropped}; train this "
        "example on a base model whose template does, or leave it out")


def test_a_template_that_raises_on_an_example_is_named_with_its_line(demo_tokenizer,
                                                                     tmp_path):
    from transformers import AutoTokenizer

    strict = AutoTokenizer.from_pretrained(demo_tokenizer.name_or_path)
    strict.chat_template = ("{% for m in messages %}{% if m['role'] == 'developer' %}"
                            "{{ raise_exception('no developer role here') }}{% endif %}"
                            "{{ m['content'] }}{% endfor %}")
    conversations = read(tmp_path, {"messages": [{"role": "developer", "content": "d"},
                                                 {"role": "user", "content": "a"},
                                                 {"role": "assistant", "content": "b"}]})
    with pytest.raises(TrainingFailed) as refused:
        tokenize_conversations(strict, conversations, 512)
    assert refused.value.code == "invalid_training_file"
    assert refused.value.message.startswith(
        "line 2: the base model's chat template cannot render this example: ")
    assert "no developer role here" in refused.value.message


def test_a_template_that_renders_tools_trains_on_the_tool_call(tools_tokenizer, tmp_path):
    (conversation,) = read(tmp_path, tool_call_example(tools=[WEATHER]))
    example = tokenize_conversations(tools_tokenizer, [conversation], 512).examples[0]
    text = tools_tokenizer.decode(example.input_ids)
    assert text.startswith(tools_tokenizer.bos_token + "<|tools|>\n")
    assert '"name": "get_weather"' in text
    # The call is trained on (its arguments as the object vLLM hands the template); the
    # tool's answer and the weight-0 reply are context only.
    assert trained_text(tools_tokenizer, conversation) == (
        '<call>get_weather {"city": "Oslo"}</call><|eos|>\n')
