# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Compliance profiles: what a variant enforces, as a document a compliance officer reads.

A profile's ``spec`` is JSON (the built-in ones are ``builtin/<key>.json``)::

    {"title": "...", "description": "...",
     "detectors": {"CARD": {"request": "redact", "response": "mask"}, ...},
     "topics": [{"id": "performance-guarantees", "title": "...", "direction": "response",
                 "action": "qualify", "patterns": ["guaranteed return", ...],
                 "message": "..."}],
     "disclaimer": "...",
     "retention": {"keep_content": false, "days": 2190},
     "hold_back_chars": 96}

Actions on identifiers: ``redact`` (a typed placeholder, ``[CARD]``), ``mask`` (all but
the last 4 characters starred: what PCI DSS allows to be shown), ``pseudonymise`` (the
same value gets the same ``[EMAIL_1]`` within one request), ``generalize`` (Safe Harbor:
a ZIP to its first 3 digits, an age over 89 to ``90+``, a date to its year), ``block``
(the request or answer is refused with ``compliance_blocked``), ``flag`` (left as it is,
counted in the audit trail) and ``allow``. Topic rules ``refuse`` (blocked, naming the
rule) or ``qualify`` (the rule's message is added to the answer). Patterns are
case-insensitive regular expressions, matched at word boundaries.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from potluck.errors import InvalidInput
from potluck_enterprise.compliance.detectors import ALL_KINDS

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
ACTIONS = ("redact", "mask", "pseudonymise", "generalize", "block", "flag", "allow")
GENERALIZABLE = frozenset({"ZIP", "AGE", "DATE", "DOB"})
TOPIC_ACTIONS = ("refuse", "qualify")
DIRECTIONS = ("request", "response", "both")
MAX_HOLD_BACK = 512


@dataclass(frozen=True)
class DetectorRule:
    kind: str
    request: str
    response: str


@dataclass(frozen=True)
class TopicRule:
    id: str
    title: str
    direction: str
    action: str
    patterns: tuple[str, ...]
    message: str
    regex: re.Pattern[str] = field(compare=False, repr=False)

    def applies_to(self, direction: str) -> bool:
        return self.direction in (direction, "both")


@dataclass(frozen=True)
class Profile:
    """A validated, compiled profile (what the guardrails run)."""

    key: str
    version: int
    title: str
    detectors: tuple[DetectorRule, ...]
    topics: tuple[TopicRule, ...]
    disclaimer: str
    keep_content: bool
    retention_days: int
    hold_back_chars: int

    def kinds(self, direction: str) -> frozenset[str]:
        return frozenset(r.kind for r in self.detectors
                         if getattr(r, direction) not in ("allow",))

    def action(self, kind: str, direction: str) -> str:
        for rule in self.detectors:
            if rule.kind == kind:
                return getattr(rule, direction)
        return "allow"


def _fail(message: str, field_name: str = "spec") -> InvalidInput:
    return InvalidInput(message, field=field_name)


def validate_spec(spec: Any) -> dict[str, Any]:
    """The spec, checked and normalised; raises ``InvalidInput`` naming the bad part."""
    if not isinstance(spec, dict):
        raise _fail("a profile is a JSON object")
    out: dict[str, Any] = {"title": str(spec.get("title") or "").strip(),
                           "description": str(spec.get("description") or "").strip()}
    if not out["title"]:
        raise _fail("a profile needs a title", "spec.title")
    detectors = spec.get("detectors") or {}
    if not isinstance(detectors, dict):
        raise _fail("detectors maps a kind to its actions", "spec.detectors")
    out["detectors"] = {}
    for kind, actions in detectors.items():
        if kind not in ALL_KINDS:
            raise _fail(f"unknown detector {kind!r}; known: {', '.join(sorted(ALL_KINDS))}",
                        f"spec.detectors.{kind}")
        if isinstance(actions, str):
            actions = {"request": actions, "response": actions}
        if not isinstance(actions, dict):
            raise _fail("give an action, or {request, response}", f"spec.detectors.{kind}")
        clean = {}
        for direction in ("request", "response"):
            action = actions.get(direction, "allow")
            if action not in ACTIONS:
                raise _fail(f"{action!r} is not an action; choose one of {', '.join(ACTIONS)}",
                            f"spec.detectors.{kind}.{direction}")
            if action == "generalize" and kind not in GENERALIZABLE:
                raise _fail(f"only {', '.join(sorted(GENERALIZABLE))} can be generalized",
                            f"spec.detectors.{kind}.{direction}")
            clean[direction] = action
        out["detectors"][kind] = clean
    topics = spec.get("topics") or []
    if not isinstance(topics, list):
        raise _fail("topics is a list of rules", "spec.topics")
    out["topics"] = []
    seen: set[str] = set()
    for index, rule in enumerate(topics):
        where = f"spec.topics[{index}]"
        if not isinstance(rule, dict):
            raise _fail("a topic rule is an object", where)
        rule_id = str(rule.get("id") or "").strip()
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", rule_id) or rule_id in seen:
            raise _fail("each rule needs a unique id of lowercase letters, digits and '-'",
                        where + ".id")
        seen.add(rule_id)
        direction = rule.get("direction", "response")
        action = rule.get("action", "qualify")
        if direction not in DIRECTIONS:
            raise _fail(f"direction is one of {', '.join(DIRECTIONS)}", where + ".direction")
        if action not in TOPIC_ACTIONS:
            raise _fail(f"action is one of {', '.join(TOPIC_ACTIONS)}", where + ".action")
        patterns = rule.get("patterns")
        if not isinstance(patterns, list) or not patterns or not all(
                isinstance(p, str) and p.strip() for p in patterns):
            raise _fail("patterns is a non-empty list of phrases or regular expressions",
                        where + ".patterns")
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _fail(f"pattern {pattern!r} is not a regular expression ({exc})",
                            where + ".patterns") from None
        message = str(rule.get("message") or "").strip()
        if not message:
            raise _fail("a rule needs a message (the refusal, or the qualifying text)",
                        where + ".message")
        out["topics"].append({"id": rule_id, "title": str(rule.get("title") or rule_id),
                              "direction": direction, "action": action,
                              "patterns": [p.strip() for p in patterns], "message": message})
    out["disclaimer"] = str(spec.get("disclaimer") or "").strip()
    retention = spec.get("retention") or {}
    if not isinstance(retention, dict):
        raise _fail("retention is {keep_content, days}", "spec.retention")
    days = retention.get("days", 2190)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500:
        raise _fail("retention.days is a whole number of days, 1 to 36500",
                    "spec.retention.days")
    out["retention"] = {"keep_content": bool(retention.get("keep_content", False)),
                        "days": days}
    hold_back = spec.get("hold_back_chars", 96)
    if isinstance(hold_back, bool) or not isinstance(hold_back, int) or \
            not 16 <= hold_back <= MAX_HOLD_BACK:
        raise _fail(f"hold_back_chars is 16 to {MAX_HOLD_BACK}", "spec.hold_back_chars")
    out["hold_back_chars"] = hold_back
    return out


def compile_profile(key: str, version: int, spec: dict[str, Any]) -> Profile:
    """A ``Profile`` from a spec (validated here too)."""
    clean = validate_spec(spec)
    return Profile(
        key=key, version=version, title=clean["title"],
        detectors=tuple(DetectorRule(kind, a["request"], a["response"])
                        for kind, a in sorted(clean["detectors"].items())),
        topics=tuple(TopicRule(
            t["id"], t["title"], t["direction"], t["action"], tuple(t["patterns"]),
            t["message"], re.compile(r"(?i)\b(?:" + "|".join(f"(?:{p})" for p in t["patterns"])
                                     + r")\b")) for t in clean["topics"]),
        disclaimer=clean["disclaimer"], keep_content=clean["retention"]["keep_content"],
        retention_days=clean["retention"]["days"], hold_back_chars=clean["hold_back_chars"])


@lru_cache(maxsize=256)
def compiled(key: str, version: int, spec_json: str) -> Profile:
    """Cached by the profile's version and text (the catalogue refresh asks every second)."""
    return compile_profile(key, version, json.loads(spec_json))


def builtin_keys() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.json") if "." not in p.stem)


def builtin_spec(key: str) -> dict[str, Any]:
    """The shipped spec of a built-in profile; raises ``InvalidInput`` for an unknown key."""
    path = BUILTIN_DIR / f"{key}.json"
    if key not in builtin_keys():
        raise InvalidInput(f"no built-in profile {key!r}; built-in: "
                           f"{', '.join(builtin_keys())}", field="profile")
    return validate_spec(json.loads(path.read_text()))
