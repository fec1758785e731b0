# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The guardrails stage of the inference pipeline, for requests to compliance variants.

A request whose model resolved to a variant (``ctx.entry.attributes["compliance"]``, put
there by the variant's model alias) has its profile applied; nothing in the request body
can turn it off or change it. Other requests pass untouched.

- ``on_request``: topic rules and identifiers in the prompt (messages' text parts, a
  completion prompt, embedding inputs); ``block``/``refuse`` answers 400
  ``compliance_blocked`` naming the rule, never the value.
- ``on_response``: identifiers and topic rules in each choice's text, then qualifiers and
  the disclaimer; ``block`` answers 422 ``compliance_blocked``.
- ``stream_transformer``: the same on a stream, with a hold-back of the profile's
  ``hold_back_chars`` (a value split over several events is seen whole before any of it
  leaves); a block mid-stream ends it with an OpenAI error event (``compliance_blocked``)
  and sends nothing more of the answer.

What fired is kept in ``ctx.state["compliance"]`` (counts, rule ids, hashes; never a
value) for the audit stage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from potluck.inference.context import RequestContext
from potluck.inference.policies import Policy, Refusal, StreamTransformer
from potluck.inference.text_stream import TextTransformer
from potluck_enterprise.compliance.guard import Blocked, Findings, Guard
from potluck_enterprise.compliance.profiles import Profile

STATE_KEY = "compliance"
BLOCKED_CODE = "compliance_blocked"


@dataclass(frozen=True)
class VariantInfo:
    """What a variant's model alias attaches to its catalogue entry."""

    variant_id: str
    name: str
    profile: Profile
    stage: str  # "published" or "candidate"


@dataclass
class RequestRecord:
    """One request's guardrail record (``ctx.state["compliance"]``)."""

    variant: VariantInfo
    findings: Findings = field(default_factory=Findings)
    prompt_sha256: str = ""
    answer_sha256: str = ""
    prompt_sent: list[str] = field(default_factory=list)  # what the model saw (redacted)
    answer_sent: dict[int, list[str]] = field(default_factory=dict)  # what the client got

    def answer_text(self) -> str:
        return "\n".join("".join(parts) for _, parts in sorted(self.answer_sent.items()))

    def seal_answer(self) -> None:
        self.answer_sha256 = sha256(self.answer_text())


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def variant_of(ctx: RequestContext) -> VariantInfo | None:
    entry = ctx.entry
    info = entry.attributes.get(STATE_KEY) if entry is not None else None
    return info if isinstance(info, VariantInfo) else None


def blocked_refusal(exc: Blocked, profile: Profile, status: int) -> Refusal:
    where = "request" if exc.direction == "request" else "answer"
    detail = f" {exc.message}" if exc.message else ""
    return Refusal(f"The {where} was blocked by rule '{exc.rule}' of the compliance profile "
                   f"'{profile.key}'.{detail}", status=status, code=BLOCKED_CODE,
                   param="messages" if exc.direction == "request" else None)


class Guardrails(Policy):
    """The compliance guardrails stage (order 300: inside limits and budgets, so a
    refused request costs nothing, and outside the usage meter)."""

    name = "compliance-guardrails"
    order = 300
    fail_closed = True

    async def on_request(self, ctx: RequestContext) -> None:
        info = variant_of(ctx)
        if info is None:
            return
        record = RequestRecord(info)
        ctx.state[STATE_KEY] = record
        guard = Guard(info.profile, "request")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        texts = list(_request_texts(body))
        record.prompt_sha256 = sha256("\n".join(text for _, text in texts))
        try:
            guard.topic_rules("\n".join(text for _, text in texts), record.findings)
            rewritten = {}
            for path, text in texts:
                new = guard.apply(text, record.findings)
                record.prompt_sent.append(new)
                if new != text:
                    rewritten[path] = new
        except Blocked as exc:
            raise blocked_refusal(exc, info.profile, 400) from None
        if _has_token_prompt(body):
            record.findings.blocked = "token-prompt"
            raise Refusal("A compliance variant takes text prompts only (token ids cannot be "
                          "checked).", status=400, code=BLOCKED_CODE, param="prompt")
        if rewritten:
            ctx.body = _replace_texts(body, rewritten)

    async def on_response(self, ctx: RequestContext, body: dict[str, Any]
                          ) -> dict[str, Any] | None:
        record = ctx.state.get(STATE_KEY)
        if not isinstance(record, RequestRecord):
            return None
        profile = record.variant.profile
        guard = Guard(profile, "response")
        choices = body.get("choices")
        if not isinstance(choices, list):
            return None
        try:
            for position, choice in enumerate(choices):
                if not isinstance(choice, dict):
                    continue
                index = choice.get("index", position)
                holder, key = _choice_text(choice)
                if holder is None:
                    continue
                text = guard.apply(holder[key], record.findings)
                qualifiers = guard.topic_rules(holder[key], record.findings)
                text += _tail(profile, qualifiers)
                holder[key] = text
                record.answer_sent[index if isinstance(index, int) else position] = [text]
        except Blocked as exc:
            record.seal_answer()
            raise blocked_refusal(exc, profile, 422) from None
        record.seal_answer()
        return body

    def stream_transformer(self, ctx: RequestContext) -> StreamTransformer | None:
        record = ctx.state.get(STATE_KEY)
        if not isinstance(record, RequestRecord):
            return None
        return GuardedStream(record)


class GuardedStream(TextTransformer):
    """A stream through one profile's response guardrails (see the module docstring)."""

    def __init__(self, record: RequestRecord) -> None:
        super().__init__()
        self.record = record
        self.profile = record.variant.profile
        self.guard = Guard(self.profile, "response")
        self.hold_back = self.profile.hold_back_chars
        self.qualifiers: dict[int, list[Any]] = {}
        self.blocked = False

    def rewrite(self, text: str) -> str:
        self._topics(text)
        return self.guard.apply(text, self.record.findings, final=False)

    def rewrite_final(self, text: str) -> str:
        self._topics(text)
        return self.guard.apply(text, self.record.findings, final=True)

    def _topics(self, text: str) -> None:
        for rule in self.guard.topic_rules(text, self.record.findings):
            fired = self.qualifiers.setdefault(0, [])
            if rule not in fired:
                fired.append(rule)

    def tail(self, index: int) -> str:
        return _tail(self.profile, self.qualifiers.get(0, []))

    async def on_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if self.blocked:
            return []
        try:
            out = await super().on_event(event)
        except Blocked as exc:
            return self._block(exc)
        self._keep(out)
        return out

    async def on_end(self) -> list[dict[str, Any]]:
        if self.blocked:
            return []
        try:
            out = await super().on_end()
        except Blocked as exc:
            return self._block(exc)
        self._keep(out)
        self.record.seal_answer()
        return out

    def _block(self, exc: Blocked) -> list[dict[str, Any]]:
        self.blocked = True
        self.record.seal_answer()
        refusal = blocked_refusal(exc, self.profile, 422)
        return [{"error": {"message": refusal.message, "type": "invalid_request_error",
                           "param": None, "code": BLOCKED_CODE}}]

    def _keep(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            for choice in event.get("choices") or ():
                if not isinstance(choice, dict):
                    continue
                delta = choice.get("delta")
                text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
                if isinstance(text, str) and text:
                    index = choice.get("index", 0)
                    self.record.answer_sent.setdefault(
                        index if isinstance(index, int) else 0, []).append(text)


def _tail(profile: Profile, qualifiers: list[Any]) -> str:
    notes = [rule.message for rule in qualifiers]
    if profile.disclaimer:
        notes.append(profile.disclaimer)
    return "".join(f"\n\n{note}" for note in notes)


# -- where text is in OpenAI's bodies ----------------------------------------------------
Path = tuple[Any, ...]


def _request_texts(body: dict[str, Any]) -> list[tuple[Path, str]]:
    """(path, text) of every text a prompt carries: chat messages (string content or text
    parts), a completion prompt (string or list of strings), embedding inputs."""
    found: list[tuple[Path, str]] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                found.append((("messages", i, "content"), content))
            elif isinstance(content, list):
                for j, part in enumerate(content):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        found.append((("messages", i, "content", j, "text"), part["text"]))
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            found.append(((key,), value))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    found.append(((key, i), item))
    return found


def _has_token_prompt(body: dict[str, Any]) -> bool:
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, list) and any(not isinstance(item, str) for item in value):
            return True
    return False


def _replace_texts(body: dict[str, Any], rewritten: dict[Path, str]) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(body)
    for path, text in rewritten.items():
        holder: Any = out
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = text
    return out


def _choice_text(choice: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    message = choice.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return message, "content"
    if isinstance(choice.get("text"), str):
        return choice, "text"
    return None, ""
