# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Scores the detectors on ``labelled_set.jsonl`` (used by the quality test and
``bench/compliance``): per kind, true and false positives and misses, then recall and
precision for the checksum-validated kinds together, and names/addresses apart."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from potluck_enterprise.compliance.detectors import (
    CHECKSUM_KINDS,
    PATTERN_DETECTORS,
    PatternScanner,
    resolve_overlaps,
)

SET = Path(__file__).with_name("labelled_set.jsonl")
# DATE (any date, Safe Harbor) would claim the dates that DOB finds by their context.
PATTERN_KINDS = frozenset(PATTERN_DETECTORS) - {"DATE", "URL", "ZIP", "AGE", "HEALTH_PLAN"}
NLP = frozenset({"PERSON", "ADDRESS"})


def rows() -> list[dict]:
    return [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]


@dataclass
class Score:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)

    def recall(self, kinds: frozenset[str]) -> float:
        tp = sum(self.tp[k] for k in kinds)
        return tp / max(1, tp + sum(self.fn[k] for k in kinds))

    def precision(self, kinds: frozenset[str]) -> float:
        tp = sum(self.tp[k] for k in kinds)
        return tp / max(1, tp + sum(self.fp[k] for k in kinds))

    def table(self) -> list[tuple[str, int, int, int]]:
        kinds = sorted(set(self.tp) | set(self.fp) | set(self.fn))
        return [(k, self.tp[k], self.fp[k], self.fn[k]) for k in kinds]


def score(with_names: bool = True) -> Score:
    scanner = PatternScanner(PATTERN_KINDS)
    finder = None
    if with_names:
        from potluck_enterprise.compliance.names import finder as get_finder

        finder = get_finder()
    result = Score()
    for row in rows():
        text = row["text"]
        found = scanner.scan(text)
        if finder is not None:
            found = resolve_overlaps([*found, *finder.scan(text, NLP)])
        labels = []
        for label in row["labels"]:
            start = text.index(label["value"])
            labels.append((label["kind"], start, start + len(label["value"])))
        matched: set[int] = set()
        for match in found:
            hit = next((i for i, (kind, start, end) in enumerate(labels)
                        if kind == match.kind and match.start < end and start < match.end
                        and i not in matched), None)
            if hit is None:
                result.fp[match.kind] += 1
            else:
                matched.add(hit)
                result.tp[match.kind] += 1
        for i, (kind, _, _) in enumerate(labels):
            if i not in matched and (with_names or kind not in NLP):
                result.fn[kind] += 1
    return result


def report(result: Score) -> str:
    lines = [f"{'kind':<10}{'tp':>5}{'fp':>5}{'fn':>5}"]
    lines += [f"{k:<10}{tp:>5}{fp:>5}{fn:>5}" for k, tp, fp, fn in result.table()]
    lines.append(f"checksum-validated ({', '.join(sorted(CHECKSUM_KINDS))}): recall "
                 f"{result.recall(CHECKSUM_KINDS):.3f}, precision "
                 f"{result.precision(CHECKSUM_KINDS):.3f}")
    other = PATTERN_KINDS - CHECKSUM_KINDS
    lines.append(f"other patterns ({', '.join(sorted(other))}): recall "
                 f"{result.recall(other):.3f}, precision {result.precision(other):.3f}")
    lines.append(f"names and addresses (PERSON, ADDRESS; Presidio, no NER model): recall "
                 f"{result.recall(NLP):.3f}, precision {result.precision(NLP):.3f}")
    return "\n".join(lines)
