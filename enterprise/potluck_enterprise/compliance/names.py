# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Person names and street addresses, with Microsoft Presidio, offline.

Presidio's defaults do not work offline: its default NLP engine downloads a spaCy model
(``spacy.cli.download``) and its email and URL recognizers fetch the public suffix list.
So the analyzer is built by hand here: the NLP engine is configured explicitly and no
predefined recognizer is loaded.

- **Out of the box** (nothing to install beyond ``presidio-analyzer`` and ``spacy``):
  spaCy's blank English pipeline (a tokenizer, no statistical model: none is published
  on PyPI by spaCy's authors, and the re-uploads there by third parties are a
  supply-chain risk), with Presidio pattern recognizers for what a pattern can tell:
  a name after a title or a label (``Dr. Jane Okafor``, ``Patient: John Smith``,
  ``Name: ...``) and US street addresses (house number, street name and type, unit,
  then optionally city, state and ZIP). A bare name in running text (``ask Maria about
  it``) is not found.
- **An operator can add** a spaCy pipeline with named-entity recognition that they
  install themselves (e.g. ``en_core_web_lg`` from spaCy's releases, or their own):
  ``POTLUCK_COMPLIANCE_SPACY_MODEL=en_core_web_lg`` (a package name or a directory).
  Presidio's ``SpacyRecognizer`` then also reports PERSON and LOCATION (as ADDRESS)
  wherever they appear. It is loaded with ``spacy.load`` only: never downloaded; a
  missing one is an error at start, not a silent fallback.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

from potluck.env import env_str
from potluck_enterprise.compliance.detectors import Match, resolve_overlaps

log = logging.getLogger(__name__)

SPACY_MODEL_SETTING = "POTLUCK_COMPLIANCE_SPACY_MODEL"
_lock = threading.Lock()

_TITLE = r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sr|Sra|Rev)\.?"
_NAME_WORD = r"[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?"
_LABEL = (r"(?:[Pp]atient|[Nn]ame|[Cc]lient|[Cc]ustomer|[Aa]ccount holder|[Bb]eneficiary|"
          r"[Ss]ubscriber|[Ee]mployee|[Gg]uarantor|[Nn]ext of kin|[Ss]pouse|[Pp]hysician|"
          r"[Rr]eferred by|[Ss]igned by|[Aa]pplicant)")
PERSON_PATTERNS = [
    ("titled name", rf"(?<=\b{_TITLE} ){_NAME_WORD}(?: [A-Z]\.)?(?: {_NAME_WORD}){{0,2}}", 0.85),
    ("labelled name", rf"(?<={_LABEL}: ){_NAME_WORD}(?: [A-Z]\.)?(?: {_NAME_WORD}){{1,2}}", 0.8),
]
_STREET_TYPES = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|"
                 r"Way|Place|Pl|Terrace|Ter|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|"
                 r"Trail|Trl")
ADDRESS_PATTERNS = [
    ("US street address",
     rf"\b\d{{1,6}} (?:[NSEW]\.? )?(?:[A-Z][a-z]+ |\d{{1,3}}(?:st|nd|rd|th) ){{1,4}}"
     rf"(?:{_STREET_TYPES})\b\.?(?:,? (?:Apt|Suite|Ste|Unit|#) ?[A-Za-z0-9-]+)?"
     r"(?:, (?:[A-Z][a-z]+ ){0,3}?[A-Z][a-z]+,? [A-Z]{2}(?: \d{5}(?:-\d{4})?)?)?", 0.8),
]


class NameFinder:
    """Finds PERSON and ADDRESS spans with a Presidio ``AnalyzerEngine`` built offline."""

    def __init__(self, spacy_model: str = "") -> None:
        import spacy
        from presidio_analyzer import (
            AnalyzerEngine,
            Pattern,
            PatternRecognizer,
            RecognizerRegistry,
        )
        from presidio_analyzer.nlp_engine import SpacyNlpEngine

        self.spacy_model = spacy_model
        engine = SpacyNlpEngine(models=[{"lang_code": "en",
                                         "model_name": spacy_model or "blank:en"}])
        # Set the pipeline ourselves: SpacyNlpEngine.load() would download a missing model.
        engine.nlp = {"en": spacy.load(spacy_model) if spacy_model else spacy.blank("en")}
        registry = RecognizerRegistry(supported_languages=["en"])
        # Case matters to these patterns (Presidio's default flags ignore it).
        flags = re.DOTALL | re.MULTILINE
        registry.add_recognizer(PatternRecognizer(
            supported_entity="PERSON", name="potluck-person-patterns", global_regex_flags=flags,
            patterns=[Pattern(n, p, s) for n, p, s in PERSON_PATTERNS]))
        registry.add_recognizer(PatternRecognizer(
            supported_entity="ADDRESS", name="potluck-address-patterns",
            global_regex_flags=flags, patterns=[Pattern(n, p, s) for n, p, s in ADDRESS_PATTERNS]))
        if spacy_model:
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer

            registry.add_recognizer(SpacyRecognizer(supported_entities=["PERSON", "LOCATION"]))
        self.analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine,
                                       supported_languages=["en"])

    def scan(self, text: str, kinds: frozenset[str]) -> list[Match]:
        entities = sorted(kinds & {"PERSON", "ADDRESS"})
        if "ADDRESS" in kinds and self.spacy_model:
            entities.append("LOCATION")  # what a spaCy NER model calls places
        if not entities or not text.strip():
            return []
        results = self.analyzer.analyze(text=text, language="en", entities=entities,
                                        score_threshold=0.5)
        found = [Match(r.start, r.end, "ADDRESS" if r.entity_type == "LOCATION"
                       else r.entity_type, text[r.start:r.end]) for r in results]
        return resolve_overlaps(found)


@lru_cache(maxsize=2)
def _finder(spacy_model: str) -> NameFinder:
    return NameFinder(spacy_model)


def finder() -> NameFinder:
    """The process's finder (built on first use: importing spaCy takes about a second)."""
    with _lock:
        return _finder(env_str(SPACY_MODEL_SETTING, ""))
