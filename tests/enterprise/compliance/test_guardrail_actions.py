# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Each action does what the profile says, per direction: Safe Harbor's generalisations
and consistent pseudonyms in the healthcare profile, masking and redaction in finance,
flags counted once however often a stream shows the same text, blocks that name the rule
and carry no value, and topic rules that qualify an answer."""

from __future__ import annotations

import pytest

from potluck_enterprise.compliance.guard import Blocked, Findings, Guard
from potluck_enterprise.compliance.profiles import builtin_spec, compile_profile


def profile(key: str):
    return compile_profile(key, 1, builtin_spec(key))


def test_healthcare_generalises_and_pseudonymises_consistently():
    findings = Findings()
    guard = Guard(profile("healthcare"), "request")
    text = ("Patient: John Smith, aged 93, of Springfield, IL 62704, seen 03/14/2024. "
            "Dr. Ann Lee called John Smith back. MRN: 00482913. NPI 1234567893.")
    out = guard.apply(text, findings)
    assert out == ("Patient: [PERSON_1], aged 90+, of Springfield, IL 627XX, seen 2024. "
                   "Dr. [PERSON_2] called [PERSON_1] back. MRN: [MRN_1]. NPI 1234567893.")
    assert findings.actions["request:PERSON:pseudonymise"] == 3
    assert findings.actions["request:NPI:flag"] == 1
    guard.apply(text, findings)  # the same text again (as a stream's held text would be)
    assert findings.actions["request:NPI:flag"] == 1


def test_finance_masks_cards_in_answers_and_blocks_an_ssn_in_prompts():
    findings = Findings()
    answer = Guard(profile("finance"), "response").apply(
        "Card 5555-5555-5555-4444 and IBAN DE89 3704 0044 0532 0130 00.", findings)
    assert answer == "Card ****-****-****-4444 and IBAN [IBAN]."
    with pytest.raises(Blocked) as blocked:
        Guard(profile("finance"), "request").apply("ssn 219-09-9998", findings)
    assert blocked.value.rule == "SSN" and "219" not in str(blocked.value.args)
    assert findings.blocked == "SSN"


def test_topic_rules_refuse_or_qualify():
    findings = Findings()
    guard = Guard(profile("finance"), "response")
    fired = guard.topic_rules("This fund offers guaranteed returns.", findings)
    assert [r.id for r in fired] == ["performance-guarantees"]
    with pytest.raises(Blocked) as refused:
        Guard(profile("finance"), "request").topic_rules("Which stocks should I buy?",
                                                         findings)
    assert refused.value.rule == "personalised-investment-advice"
    assert findings.topics == {"performance-guarantees:qualify",
                               "personalised-investment-advice:refuse"}
