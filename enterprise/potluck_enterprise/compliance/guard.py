# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The guardrails of one profile applied to text: find identifiers, act on each, check
topic rules, and keep per-request findings without ever keeping a matched value.

``Findings`` (one per request) counts what fired by kind and action, keeps the
pseudonyms of this request (value -> ``[EMAIL_1]``, in memory only, keyed by an HMAC of
the value under a per-request random key) and which topic rules fired. It is what the
audit trail records; the values themselves go nowhere.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field

from potluck_enterprise.compliance.detectors import (
    NLP_KINDS,
    Match,
    PatternScanner,
    digits,
    resolve_overlaps,
)
from potluck_enterprise.compliance.profiles import Profile, TopicRule

# A match this close to the end of text that is still arriving may grow (more digits, a
# longer domain; an address's city, state and ZIP; a name's last word), so it is acted
# on only once this much text beyond it has come, or at the end. Characters.
SETTLE_MARGIN = 4
SETTLE_MARGINS = {"ADDRESS": 40, "PERSON": 16}
# Safe Harbor: three-digit ZIP prefixes whose area had 20,000 people or fewer (HHS's
# de-identification guidance, 2000 census); they become 000.
SMALL_ZIP3 = frozenset({"036", "059", "063", "102", "203", "556", "692", "790", "821", "823",
                        "830", "831", "878", "879", "884", "890", "893"})


class Blocked(Exception):
    """An identifier or topic rule whose action is ``block``/``refuse`` fired. ``rule``
    names it (a detector kind or a topic rule id); the matched value is never carried."""

    def __init__(self, rule: str, direction: str, message: str = "") -> None:
        super().__init__(rule)
        self.rule = rule
        self.direction = direction
        self.message = message


@dataclass
class Findings:
    """What the guardrails did to one request (no values)."""

    actions: Counter[str] = field(default_factory=Counter)  # "request:CARD:redact" -> n
    topics: set[str] = field(default_factory=set)  # "performance-guarantees:qualify"
    blocked: str = ""
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(16), repr=False)
    _pseudonyms: dict[bytes, str] = field(default_factory=dict, repr=False)
    _per_kind: Counter[str] = field(default_factory=Counter, repr=False)
    _flagged: set[bytes] = field(default_factory=set, repr=False)
    # Names found in this request (after a title or a label), so that a later bare
    # mention of the same name is caught too. In memory only, gone with the request.
    _names: set[str] = field(default_factory=set, repr=False)

    def fingerprint(self, kind: str, value: str) -> bytes:
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).digest()

    def pseudonym(self, kind: str, value: str) -> str:
        mark = self.fingerprint(kind, _normal(kind, value))
        name = self._pseudonyms.get(mark)
        if name is None:
            self._per_kind[kind] += 1
            name = self._pseudonyms[mark] = f"[{kind}_{self._per_kind[kind]}]"
        return name

    def as_dict(self) -> dict[str, object]:
        return {"actions": dict(sorted(self.actions.items())), "topics": sorted(self.topics),
                "blocked": self.blocked}


def _normal(kind: str, value: str) -> str:
    if kind in ("EMAIL", "URL"):
        return value.lower()
    if kind in ("CARD", "SSN", "PHONE", "NPI", "ROUTING", "ACCOUNT", "IBAN"):
        return digits(value) if kind != "IBAN" else re.sub(r"\s", "", value.upper())
    return value


def mask(value: str) -> str:
    """All but the last 4 letters or digits starred; separators kept (PCI DSS shows at
    most the last 4 of a card)."""
    keep = 4
    out = []
    for char in reversed(value):
        if char.isalnum():
            out.append(char if keep > 0 else "*")
            keep -= 1
        else:
            out.append(char)
    return "".join(reversed(out))


def generalize(kind: str, value: str) -> str:
    """Safe Harbor's generalisations: ZIP to 3 digits, an age over 89 to 90+, a date to
    its year."""
    if kind == "ZIP":
        prefix = value[:3]
        return ("000" if prefix in SMALL_ZIP3 else prefix) + "XX"
    if kind == "AGE":
        return "90+"
    year = re.search(r"(1[89]\d\d|20\d\d)", value)
    return year.group(1) if year else f"[{kind}]"


class Guard:
    """One profile's guardrails for one direction (``request`` or ``response``)."""

    def __init__(self, profile: Profile, direction: str) -> None:
        self.profile = profile
        self.direction = direction
        kinds = profile.kinds(direction)
        self.patterns = PatternScanner(kinds - NLP_KINDS)
        self.nlp_kinds = kinds & NLP_KINDS
        self.topics: tuple[TopicRule, ...] = tuple(t for t in profile.topics
                                                   if t.applies_to(direction))

    def scan(self, text: str) -> list[Match]:
        found = self.patterns.scan(text)
        if self.nlp_kinds and text:
            from potluck_enterprise.compliance.names import finder

            found = resolve_overlaps([*found, *finder().scan(text, self.nlp_kinds)])
        return found

    def apply(self, text: str, findings: Findings, *, final: bool = True) -> str:
        """``text`` with each identifier acted on. With ``final=False`` (text still
        arriving) a match near the end is left for a later call. Raises ``Blocked``."""
        if not text:
            return text
        out: list[str] = []
        last = 0
        for match in self._with_known_names(self.scan(text), text, findings):
            margin = SETTLE_MARGINS.get(match.kind, SETTLE_MARGIN)
            if not final and match.end > len(text) - margin:
                break
            action = self.profile.action(match.kind, self.direction)
            if action == "allow":
                continue
            if action == "block":
                findings.actions[f"{self.direction}:{match.kind}:block"] += 1
                findings.blocked = match.kind
                raise Blocked(match.kind, self.direction)
            if action == "flag":
                mark = findings.fingerprint(match.kind, match.value + f"@{self.direction}")
                if mark not in findings._flagged:  # a stream sees held text again
                    findings._flagged.add(mark)
                    findings.actions[f"{self.direction}:{match.kind}:flag"] += 1
                continue
            out.append(text[last:match.start])
            out.append(self._replacement(match, action, findings))
            findings.actions[f"{self.direction}:{match.kind}:{action}"] += 1
            last = match.end
        out.append(text[last:])
        return "".join(out)

    def _with_known_names(self, found: list[Match], text: str, findings: Findings
                          ) -> list[Match]:
        if "PERSON" not in self.nlp_kinds:
            return found
        findings._names.update(m.value for m in found if m.kind == "PERSON")
        if not findings._names:
            return found
        pattern = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in sorted(
            findings._names, key=len, reverse=True)) + r")\b")
        extra = [Match(m.start(), m.end(), "PERSON", m.group(0))
                 for m in pattern.finditer(text)]
        return resolve_overlaps([*found, *extra])

    @staticmethod
    def _replacement(match: Match, action: str, findings: Findings) -> str:
        if action == "mask":
            return mask(match.value)
        if action == "pseudonymise":
            return findings.pseudonym(match.kind, match.value)
        if action == "generalize":
            return generalize(match.kind, match.value)
        return f"[{match.kind}]"

    def topic_rules(self, text: str, findings: Findings) -> list[TopicRule]:
        """The topic rules ``text`` triggers; raises ``Blocked`` for a ``refuse`` rule."""
        fired = []
        for rule in self.topics:
            if rule.regex.search(text):
                findings.topics.add(f"{rule.id}:{rule.action}")
                if rule.action == "refuse":
                    findings.blocked = rule.id
                    raise Blocked(rule.id, self.direction, rule.message)
                fired.append(rule)
        return fired
