# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A published variant is served by its base's replicas through a real gateway process,
with its profile applied both ways: identifiers redacted, masked or pseudonymised before
the replica sees them and in its answers (a card split over three stream events
included), the disclaimer appended streamed and not, blocks as OpenAI 400/422
``compliance_blocked`` naming the rule, nothing a caller sends switching it off, each
request in the audit log, and no matched value in the gateway's log or the audit log.
The base model itself stays untouched. (Fake replica: the gateway's own logic.)"""

from __future__ import annotations

import json
import time

import openai
import pytest
from compliance_helpers import publish
from gateway_harness import wait_until_listed

pytestmark = pytest.mark.slow

CARD = "4111 1111 1111 1111"
SSN = "219-09-9998"
DISCLAIMER = "This is general information, not financial advice."


def test_a_finance_variant_guards_both_ways_and_is_audited(
        compliance_on, licensed_gateway, upstream, served_model, org, key_for):
    from potluck_enterprise.audit.models import AuditEntry

    base = served_model("demo", upstream.port)
    publish(org, base)
    key = key_for(org, ["inference"])
    wait_until_listed(licensed_gateway, key, "demo:finance")
    client = openai.OpenAI(base_url=licensed_gateway.v1, api_key=key, max_retries=0,
                           timeout=20)

    # The prompt: the card redacted, contact details pseudonymised consistently.
    upstream.behaviour.pieces = ["Your card 4111 11", "11 1111 1", "111 is active."]
    answer = client.chat.completions.create(model="demo:finance", messages=[
        {"role": "user", "content": f"card {CARD}; mail jo@example.com, again jo@example.com,"
                                    " or ann@example.com"}],
        extra_body={"compliance": "off", "guardrails": False})  # not switchable
    seen = upstream.bodies[-1]
    assert seen["model"] == "demo"  # served by the base's replica
    assert seen["messages"][0]["content"] == ("card [CARD]; mail [EMAIL_1], again [EMAIL_1],"
                                              " or [EMAIL_2]")
    text = answer.choices[0].message.content
    assert text == f"Your card **** **** **** 1111 is active.\n\n{DISCLAIMER}"
    assert answer.model == "demo:finance"

    # Streamed: the card arrives in three events and is masked before any of it leaves.
    stream = client.chat.completions.create(model="demo:finance", stream=True, messages=[
        {"role": "user", "content": "status?"}])
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    streamed = "".join(pieces)
    assert streamed == f"Your card **** **** **** 1111 is active.\n\n{DISCLAIMER}"
    assert not any("4111" in piece for piece in pieces)

    # Blocks: named by rule, never echoing the value; the replica never sees them.
    calls = len(upstream.bodies)
    with pytest.raises(openai.BadRequestError) as blocked:
        client.chat.completions.create(model="demo:finance", messages=[
            {"role": "user", "content": f"my SSN is {SSN}"}])
    assert blocked.value.body["code"] == "compliance_blocked"
    assert "'SSN'" in blocked.value.body["message"]
    assert SSN not in json.dumps(blocked.value.body)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="demo:finance", messages=[
            {"role": "user", "content": "Which stocks should I buy this week?"}])
    assert "personalised-investment-advice" in refused.value.body["message"]
    assert len(upstream.bodies) == calls

    # An answer whose content a profile blocks: 422 (non-streamed) / an error event.
    from potluck_enterprise.compliance import services

    spec = services.get_profile(org, "finance").spec
    spec["detectors"]["IBAN"] = {"request": "redact", "response": "block"}
    services.save_profile(org, "finance", spec)
    upstream.behaviour.pieces = ["Pay to DE89 3704 0044 0532 0130 00 ", "today."]
    blocked_answer = None
    for _ in range(50):  # the edited profile reaches the worker within a catalogue refresh
        try:
            client.chat.completions.create(model="demo:finance", messages=[
                {"role": "user", "content": "where do I pay?"}])
        except openai.UnprocessableEntityError as exc:
            blocked_answer = exc
            break
        time.sleep(0.2)
    assert blocked_answer is not None
    assert blocked_answer.body["code"] == "compliance_blocked"
    assert "DE89" not in blocked_answer.body["message"]
    with pytest.raises(openai.APIError) as cut:
        for _ in client.chat.completions.create(model="demo:finance", stream=True, messages=[
                {"role": "user", "content": "where do I pay?"}]):
            pass
    assert "compliance" in str(cut.value) and "DE89" not in str(cut.value)

    # The base model is untouched.
    upstream.behaviour.pieces = [f"Card {CARD}."]
    plain = client.chat.completions.create(model="demo", messages=[
        {"role": "user", "content": f"card {CARD}"}])
    assert upstream.bodies[-1]["messages"][0]["content"] == f"card {CARD}"
    assert plain.choices[0].message.content == f"Card {CARD}."

    # A request refused by a limit, before the guardrails, is still in the audit log.
    from potluck.accounts.models import ApiKey

    limited = key_for(org, ["inference"], name="limited")
    ApiKey.objects.filter(name="limited").update(rpm_limit=1)
    limited_client = openai.OpenAI(base_url=licensed_gateway.v1, api_key=limited,
                                   max_retries=0, timeout=20)
    upstream.behaviour.pieces = ["fine."]
    limited_client.chat.completions.create(model="demo:finance", messages=[
        {"role": "user", "content": "one"}])
    with pytest.raises(openai.RateLimitError):
        limited_client.chat.completions.create(model="demo:finance", messages=[
            {"role": "user", "content": "two"}])

    # Audit: every variant request (served and blocked), none of the base's; no values.
    deadline = time.monotonic() + 10
    while AuditEntry.objects.filter(action="inference.request", data__status=429).count() < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    entries = list(AuditEntry.objects.filter(action="inference.request").order_by("seq"))
    assert {e.data["model"] for e in entries} == {"demo:finance"}
    first = entries[0].data
    assert first["detections"] == {"request:CARD:redact": 1, "request:EMAIL:pseudonymise": 3,
                                   "response:CARD:mask": 1}
    assert first["profile"] == "finance" and first["status"] == 200
    assert len(first["prompt_sha256"]) == 64 and len(first["answer_sha256"]) == 64
    assert [e.data["blocked"] for e in entries[2:4]] == ["SSN", "personalised-investment-advice"]
    assert entries[-1].data["status"] == 429 and entries[-1].data["outcome"] == "refused"
    dumped = json.dumps([e.data for e in entries]) + licensed_gateway.log_path.read_text()
    for value in ("4111", SSN, "jo@example.com", "DE89 3704"):
        assert value not in dumped
