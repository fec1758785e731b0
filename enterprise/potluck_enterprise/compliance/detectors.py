# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Offline detectors of identifiers in text: a pattern finds candidates, a check confirms.

Each ``Detector`` has a ``kind`` (``CARD``, ``IBAN``, ...: the placeholder's name), a
compiled pattern whose group ``v`` (or the whole match) is the value, an optional
validator, and optional context words that must appear within ``context_window``
characters before the value (for numbers that are only identifiers in context, such as
a routing or account number). Nothing here downloads anything or keeps a matched value.

Sources of the rules:
- payment cards: ISO/IEC 7812 (Luhn check digit; issuer prefixes of the card networks);
- IBAN: ISO 13616 (mod-97 = 1, per-country length) through ``python-stdnum``;
- US SSN: the SSA's rules (no area 000, 666 or 900-999, no group 00, no serial 0000,
  and the numbers it published as never valid) through ``python-stdnum``;
- US NPI: CMS's NPI check digit (Luhn over ``80840`` + the first nine digits);
- ABA routing numbers: the ABA's 3-7-1 weighted checksum through ``python-stdnum``;
- phone numbers: Google's libphonenumber metadata through ``phonenumbers``;
- HIPAA Safe Harbor (45 CFR 164.514(b)(2)): ZIP codes reduced to their first 3 digits
  (``000`` for the prefixes HHS lists as under 20,000 people), ages over 89 as ``90+``,
  dates reduced to the year, medical record, health plan and account numbers, URLs, IPs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import rtn, ssn

Validator = Callable[[str], bool]


@dataclass(frozen=True)
class Match:
    """One identifier found: ``[start, end)`` of the text, its kind and the value.

    ``value`` stays in memory for the action (masking keeps its last 4) and is never
    logged, counted by value or stored.
    """

    start: int
    end: int
    kind: str
    value: str


@dataclass(frozen=True)
class Detector:
    kind: str
    title: str
    pattern: re.Pattern[str]
    validate: Validator | None = None
    context: re.Pattern[str] | None = None
    context_window: int = 40
    checksum: bool = False  # validated by a checksum (the quality figures group these)
    max_length: int = 64  # the longest value it finds (stream hold-back covers it)
    # A cheap test the text must pass before the pattern runs (most text has no email
    # sign, no context word, no run of digits): the scan's cost on ordinary text.
    trigger: re.Pattern[str] | None = None

    def find(self, text: str) -> Iterable[Match]:
        if self.trigger is not None and self.trigger.search(text) is None:
            return
        if self.context is not None and self.context.search(text) is None:
            return
        for found in self.pattern.finditer(text):
            group = "v" if "v" in self.pattern.groupindex else 0
            value = found.group(group)
            if value is None:
                continue
            start, end = found.span(group)
            if self.validate is not None and not self.validate(value):
                continue
            if self.context is not None and not self.context.search(
                    text, max(0, start - self.context_window), start):
                continue
            yield Match(start, end, self.kind, value)


# -- validators --------------------------------------------------------------------------
def digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _card_prefix(number: str) -> bool:
    """Issuer prefixes (ISO/IEC 7812 IINs) of Visa, Mastercard, Amex, Discover, JCB,
    Diners Club, UnionPay and Maestro, with the lengths each network issues."""
    n = len(number)
    two, three, four, six = (int(number[:k]) for k in (2, 3, 4, 6))
    if number[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if four == 6011 or two == 65 or 644 <= three <= 649 or 622126 <= six <= 622925:
        return 16 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if 300 <= three <= 305 or two in (36, 38, 39) or four == 3095:
        return 14 <= n <= 19
    if two == 62:
        return 16 <= n <= 19
    if two in (50, 56, 57, 58, 63, 67) or number[0] == "6":
        return 12 <= n <= 19
    return False


def is_card(value: str) -> bool:
    number = digits(value)
    return 13 <= len(number) <= 19 and _card_prefix(number) and luhn.is_valid(number)


def is_iban(value: str) -> bool:
    return iban.is_valid(value)


def is_ssn(value: str) -> bool:
    number = digits(value)
    return len(number) == 9 and ssn.is_valid(number)


def is_npi(value: str) -> bool:
    number = digits(value)
    return len(number) == 10 and number[0] in "12" and luhn.is_valid("80840" + number)


def is_routing(value: str) -> bool:
    number = digits(value)
    return len(number) == 9 and rtn.is_valid(number) and number[:2] in _ROUTING_PREFIXES


# Federal Reserve routing symbol prefixes: 00-12 banks, 21-32 thrifts, 61-72 electronic,
# 80 traveller's cheques.
_ROUTING_PREFIXES = {f"{n:02d}" for n in [*range(0, 13), *range(21, 33), *range(61, 73), 80]}


def is_phone(value: str) -> bool:
    try:
        parsed = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


def is_ip(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not (address.is_unspecified or (address.version == 6 and value.count(":") < 2))


_DIGITS = re.compile(r"\d\d")
_MANY_DIGITS = re.compile(r"\d\d\d")


def is_date(value: str) -> bool:
    year = re.search(r"(1[89]\d\d|20\d\d)", value)
    return year is not None


# -- patterns ----------------------------------------------------------------------------
def _words(*words: str) -> re.Pattern[str]:
    return re.compile(r"(?i)\b(?:" + "|".join(words) + r")\b")


_MONTHS = ("jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           "sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?")
DATE = (r"(?:(?:0?[1-9]|1[0-2])[/.-](?:0?[1-9]|[12]\d|3[01])[/.-](?:1[89]|20)\d\d"
        r"|(?:1[89]|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
        rf"|(?:{_MONTHS})\.? (?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,? (?:1[89]|20)\d\d"
        rf"|(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)? (?:{_MONTHS})\.?,? (?:1[89]|20)\d\d)")

CARD = Detector(
    "CARD", "Payment card number (Luhn and issuer prefix)",
    re.compile(r"(?<![\d-])(?P<v>\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}|\d{4}[ -]?\d{6}[ -]?\d{5})"
               r"(?![\d-])"),
    is_card, checksum=True, max_length=23, trigger=_MANY_DIGITS)
IBAN = Detector(
    "IBAN", "International bank account number (mod-97)",
    re.compile(r"\b(?P<v>[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})\b"),
    is_iban, checksum=True, max_length=42, trigger=re.compile(r"[A-Z]{2}\d\d"))
SSN = Detector(
    "SSN", "US social security number (SSA ranges)",
    re.compile(r"(?<![\d-])(?P<v>\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4})(?![\d-])"),
    is_ssn, checksum=True, max_length=11, trigger=_MANY_DIGITS)
SSN_BARE = Detector(  # nine digits in a row only count where a word says they are an SSN
    "SSN", "US social security number, unformatted (with context)",
    re.compile(r"(?<!\d)(?P<v>\d{9})(?!\d)"), is_ssn,
    _words("ssn", "social security(?: number| no\\.?)?", "ss#"), checksum=True, max_length=9)
NPI = Detector(
    "NPI", "US national provider identifier (check digit; with context)",
    re.compile(r"(?<!\d)(?P<v>[12]\d{9})(?!\d)"), is_npi,
    _words("npi", "national provider(?: identifier)?", "provider (?:id|number)"),
    checksum=True, max_length=10)
ROUTING = Detector(
    "ROUTING", "ABA routing number (3-7-1 checksum; with context)",
    re.compile(r"(?<!\d)(?P<v>\d{9})(?!\d)"), is_routing,
    _words("routing", "aba", "rtn", "transit(?: number)?", "wire"), checksum=True,
    max_length=9)
EMAIL = Detector(
    "EMAIL", "Email address",
    re.compile(r"(?<![\w.+-])(?P<v>[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
               r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
               r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24})\b"),
    max_length=64 + 1 + 80, trigger=re.compile("@"))
PHONE = Detector(
    "PHONE", "Phone or fax number (libphonenumber)",
    re.compile(r"(?<![\w+])(?P<v>(?:\+1[ .-]?)?\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]?\d{4}"
               r"|\+[2-9]\d{0,2}(?:[ .-]?\d{1,4}){2,5})(?![\d-])"),
    is_phone, max_length=24, trigger=_MANY_DIGITS)
IP = Detector(
    "IP", "IP address (v4 or v6)",
    re.compile(r"(?<![\w.:])(?P<v>(?:\d{1,3}\.){3}\d{1,3}"
               r"|(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})"
               r"|(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?)"
               r"(?![\w.:])"),
    is_ip, max_length=39, trigger=re.compile(r"\d\.\d|:[0-9A-Fa-f]*:"))
DATE_OF_BIRTH = Detector(
    "DOB", "Date of birth (a date with a birth context)",
    re.compile(rf"(?i)(?<![\w/.-])(?P<v>{DATE})(?![\w/-])"), is_date,
    _words("born", "dob", "d\\.o\\.b\\.?", "date of birth", "birth ?date", "birthday"),
    context_window=30, max_length=20)
DATE_ANY = Detector(  # Safe Harbor: every date of an individual, reduced to the year
    "DATE", "Date (any, for Safe Harbor)",
    re.compile(rf"(?i)(?<![\w/.-])(?P<v>{DATE})(?![\w/-])"), is_date,
    max_length=20, trigger=_DIGITS)
MRN = Detector(
    "MRN", "Medical record number (with context)",
    re.compile(r"(?i)\b(?:mrn|medical record(?: number| no\.?| #)?|chart(?: number| no\.?| #))"
               r"\s*[:#]?\s*(?P<v>[A-Z]{0,3}-?\d{5,12})\b"),
    max_length=16, trigger=re.compile(r"(?i)mrn|record|chart"))
HEALTH_PLAN = Detector(
    "HEALTH_PLAN", "Health plan beneficiary or member number (with context)",
    re.compile(r"(?i)\b(?:member id|member number|subscriber id|beneficiary (?:id|number)|"
               r"health plan (?:id|number)|policy (?:number|no\.?|#)|medicare (?:id|number)|"
               r"mbi)\s*[:#]?\s*(?P<v>[A-Z0-9](?:[A-Z0-9-]){5,19})\b"),
    max_length=20,
    trigger=re.compile(r"(?i)member|subscriber|beneficiary|plan|policy|medicare|mbi"))
ACCOUNT = Detector(
    "ACCOUNT", "Bank or customer account number (with context)",
    re.compile(r"(?i)\b(?:account|acct\.?|a/c)\s*(?:number|no\.?|#|num)?\s*[:#]?\s*"
               r"(?P<v>\d(?:[ -]?\d){5,16})(?![\d-])"),
    max_length=24, trigger=re.compile(r"(?i)acc|a/c"))
URL = Detector(
    "URL", "Web address",
    re.compile(r"(?i)\b(?P<v>https?://[^\s<>\"')\]]{1,200}|www\.[^\s<>\"')\]]{1,200})"),
    max_length=208, trigger=re.compile(r"(?i)http|www\."))
ZIP = Detector(  # a US ZIP only where a state precedes it, or the word ZIP
    "ZIP", "US ZIP code (after a state, or the word ZIP)",
    re.compile(r"(?:\b(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|"
               r"O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[AT]|W[AIVY])\.?,?|(?i:\bzip(?: ?code)?:?))"
               r"\s+(?P<v>\d{5}(?:-\d{4})?)(?![\d-])"), max_length=10, trigger=_MANY_DIGITS)
AGE = Detector(  # Safe Harbor: ages over 89 become "90+"; younger ages are not identifiers
    "AGE", "Age over 89",
    re.compile(r"(?i)(?:\b(?:aged?|age:)\s*(?P<v>\d{2,3})\b(?!\s*(?:%|percent|days|months))"
               r"|\b(?P<w>\d{2,3})[- ](?:years?|yrs?|y)[- ]?(?:old|o)\b)"),
    max_length=3, trigger=_DIGITS)

PATTERN_DETECTORS: dict[str, list[Detector]] = {
    "CARD": [CARD], "IBAN": [IBAN], "SSN": [SSN, SSN_BARE], "NPI": [NPI],
    "ROUTING": [ROUTING], "EMAIL": [EMAIL], "PHONE": [PHONE], "IP": [IP],
    "DOB": [DATE_OF_BIRTH], "DATE": [DATE_ANY], "MRN": [MRN], "HEALTH_PLAN": [HEALTH_PLAN],
    "ACCOUNT": [ACCOUNT], "URL": [URL], "ZIP": [ZIP], "AGE": [AGE],
}
CHECKSUM_KINDS = frozenset({"CARD", "IBAN", "SSN", "NPI", "ROUTING"})
# Kinds found by the names-and-addresses engine (``potluck_enterprise.compliance.names``).
NLP_KINDS = frozenset({"PERSON", "ADDRESS"})
ALL_KINDS = frozenset(PATTERN_DETECTORS) | NLP_KINDS


def _age_values(detector: Detector, text: str) -> Iterable[Match]:
    if detector.trigger is not None and detector.trigger.search(text) is None:
        return
    for found in detector.pattern.finditer(text):
        group = "v" if found.group("v") is not None else "w"
        age = int(found.group(group))
        if 89 < age < 130:
            start, end = found.span(group)
            yield Match(start, end, "AGE", found.group(group))


@dataclass
class PatternScanner:
    """Finds the identifiers of the ``kinds`` asked for; overlapping matches resolve to
    the earliest, then the longest, then the checksum-validated one."""

    kinds: frozenset[str]
    detectors: list[Detector] = field(init=False)

    def __post_init__(self) -> None:
        self.detectors = [d for kind in sorted(self.kinds) for d in
                          PATTERN_DETECTORS.get(kind, [])]

    @property
    def max_length(self) -> int:
        return max((d.max_length for d in self.detectors), default=0)

    def scan(self, text: str) -> list[Match]:
        found: list[Match] = []
        for detector in self.detectors:
            if detector is AGE:
                found.extend(_age_values(detector, text))
            else:
                found.extend(detector.find(text))
        return resolve_overlaps(found)


def resolve_overlaps(found: list[Match]) -> list[Match]:
    """Non-overlapping matches in text order (earliest, then longest, then checksum)."""
    found.sort(key=lambda m: (m.start, -(m.end - m.start), m.kind not in CHECKSUM_KINDS))
    kept: list[Match] = []
    for match in found:
        if kept and match.start < kept[-1].end:
            continue
        kept.append(match)
    return kept
