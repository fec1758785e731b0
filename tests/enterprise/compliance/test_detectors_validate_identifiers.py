# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Each detector finds its identifier only when the identifier's own rule holds (Luhn and
issuer prefix, mod-97, the SSA's ranges, the NPI and ABA check digits, libphonenumber),
numbers that are identifiers only in context need the context, and Safe Harbor's
generalisations give what the rule says."""

from __future__ import annotations

import pytest

from potluck_enterprise.compliance.detectors import PatternScanner
from potluck_enterprise.compliance.guard import generalize, mask


def kinds(text: str, *wanted: str) -> list[tuple[str, str]]:
    return [(m.kind, m.value) for m in PatternScanner(frozenset(wanted)).scan(text)]


@pytest.mark.parametrize("text,expected", [
    ("pay 4111 1111 1111 1111 now", [("CARD", "4111 1111 1111 1111")]),
    ("pay 4111-1111-1111-1111 now", [("CARD", "4111-1111-1111-1111")]),
    ("amex 378282246310005.", [("CARD", "378282246310005")]),
    ("amex 3782 822463 10005.", [("CARD", "3782 822463 10005")]),
    ("pay 4111 1111 1111 1112 now", []),  # Luhn fails
    ("order 9111111111111111 now", []),  # Luhn holds, but no network issues 9...
])
def test_cards_need_luhn_and_an_issuer_prefix(text, expected):
    assert kinds(text, "CARD") == expected


def test_iban_needs_mod_97():
    assert kinds("to DE89 3704 0044 0532 0130 00 today", "IBAN") == [
        ("IBAN", "DE89 3704 0044 0532 0130 00")]
    assert kinds("to DE88 3704 0044 0532 0130 00 today", "IBAN") == []


@pytest.mark.parametrize("value,valid", [
    ("219-09-9998", True), ("000-12-3456", False), ("666-12-3456", False),
    ("900-12-3456", False), ("123-00-4567", False), ("123-45-0000", False),
    ("078-05-1120", False),  # the SSA's published "never valid" number
])
def test_ssn_ranges(value, valid):
    assert bool(kinds(f"SSN {value}.", "SSN")) == valid


def test_unformatted_ssn_npi_and_routing_need_their_context():
    assert kinds("ssn: 219099998", "SSN") == [("SSN", "219099998")]
    assert kinds("code 219099998", "SSN") == []
    assert kinds("NPI 1234567893", "NPI") == [("NPI", "1234567893")]
    assert kinds("NPI 1234567890", "NPI") == []  # check digit wrong
    assert kinds("number 1234567893", "NPI") == []
    assert kinds("routing number 021000021", "ROUTING") == [("ROUTING", "021000021")]
    assert kinds("routing number 021000022", "ROUTING") == []
    assert kinds("ticket 021000021", "ROUTING") == []


def test_contact_details_and_addresses():
    text = "mail jo.ann+x@mail.example.co.uk or (212) 555-0142, from 10.1.2.3 or 2001:db8::1"
    assert kinds(text, "EMAIL", "PHONE", "IP") == [
        ("EMAIL", "jo.ann+x@mail.example.co.uk"), ("PHONE", "(212) 555-0142"),
        ("IP", "10.1.2.3"), ("IP", "2001:db8::1")]
    assert kinds("call 123-456-7890", "PHONE") == []  # area codes never start with 1
    assert kinds("from 300.1.2.3", "IP") == []


def test_safe_harbor_kinds_and_generalisations():
    found = kinds("Patient aged 93, MRN: 00482913, lives in Springfield, IL 62704, "
                  "born 03/14/1931; member id: XJ4477120", "AGE", "MRN", "ZIP", "DOB",
                  "HEALTH_PLAN")
    assert found == [("AGE", "93"), ("MRN", "00482913"), ("ZIP", "62704"),
                     ("DOB", "03/14/1931"), ("HEALTH_PLAN", "XJ4477120")]
    assert kinds("a 45-year-old man", "AGE") == []  # only ages over 89 identify
    assert generalize("ZIP", "62704") == "627XX"
    assert generalize("ZIP", "03601") == "000XX"  # a prefix HHS lists as under 20,000
    assert generalize("AGE", "93") == "90+"
    assert generalize("DATE", "March 3, 1961") == "1961"
    assert mask("4111 1111 1111 1111") == "**** **** **** 1111"


def test_names_and_addresses_are_found_without_touching_the_network(monkeypatch):
    import socket

    from potluck_enterprise.compliance.names import NameFinder

    def refuse(*args, **kwargs):
        raise AssertionError("the names detector tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    finder = NameFinder()  # a fresh one: nothing loaded before the network was cut
    found = finder.scan("Patient: Maria Okafor lives at 12 Cedar Lane, Austin, TX 78701; "
                        "Dr. Wei Chen saw her. Ask Grace about it.",
                        frozenset({"PERSON", "ADDRESS"}))
    assert [(m.kind, m.value) for m in found] == [
        ("PERSON", "Maria Okafor"), ("ADDRESS", "12 Cedar Lane, Austin, TX 78701"),
        ("PERSON", "Wei Chen")]  # a bare first name needs an NER model (an operator's)
