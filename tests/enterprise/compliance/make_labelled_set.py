# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Writes ``labelled_set.jsonl``: sentences written for this project with planted
identifiers (labels give each one's kind and exact text), near-misses that must not be
found, and names and addresses. About a third are also split into stream chunks at
random places. Deterministic (seeded): ``python tests/enterprise/compliance/make_labelled_set.py``.

Valid numbers are made by their own rules here (Luhn, mod-97, SSA ranges, the NPI and
ABA check digits), not by the detectors under test.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

OUT = Path(__file__).with_name("labelled_set.jsonl")
rng = random.Random(20261201)


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return str((10 - total % 10) % 10)


def card() -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15),
                                 ("37", 15), ("6011", 16), ("65", 16), ("3530", 16),
                                 ("4", 19)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = body + luhn_digit(body)
    style = rng.choice(["plain", "spaces", "dashes"])
    if style == "plain" or length not in (15, 16):
        return number
    sep = " " if style == "spaces" else "-"
    if length == 15:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i:i + 4] for i in range(0, 16, 4))


def bad_card() -> str:
    body = "4" + "".join(rng.choice(string.digits) for _ in range(14))
    good = luhn_digit(body)
    wrong = str((int(good) + rng.randint(1, 9)) % 10)
    return body + wrong


IBAN_FORMATS = {"DE": (0, 18), "GB": (4, 14), "NL": (4, 10), "BE": (0, 12), "AT": (0, 16)}


def iban_check(country: str, bban: str) -> str:
    moved = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in moved))
    return f"{98 - number % 97:02d}"


def iban(valid: bool = True) -> str:
    from stdnum import iban as std

    while True:
        country = rng.choice(list(IBAN_FORMATS))
        letters, digits = IBAN_FORMATS[country]
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(letters)) + \
            "".join(rng.choice(string.digits) for _ in range(digits))
        check = iban_check(country, bban)
        if not valid:
            check = f"{(int(check) + rng.randint(1, 50)) % 97 + 2:02d}"
        text = country + check + bban
        if std.is_valid(text) != valid:
            continue
        if rng.random() < 0.5:
            return " ".join(text[i:i + 4] for i in range(0, len(text), 4))
        return text


def ssn() -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    return f"{area:03d}-{group:02d}-{serial:04d}"


def bad_ssn() -> str:
    area, group, serial = rng.choice([(0, rng.randint(1, 99), rng.randint(1, 9999)),
                                      (666, rng.randint(1, 99), rng.randint(1, 9999)),
                                      (rng.randint(900, 999), rng.randint(1, 99),
                                       rng.randint(1, 9999)),
                                      (rng.randint(1, 665), 0, rng.randint(1, 9999)),
                                      (rng.randint(1, 665), rng.randint(1, 99), 0)])
    return f"{area:03d}-{group:02d}-{serial:04d}"


def npi() -> str:
    body = rng.choice("12") + "".join(rng.choice(string.digits) for _ in range(8))
    return body + luhn_digit("80840" + body)


def routing() -> str:
    prefix = rng.choice([f"{n:02d}" for n in [*range(1, 13), *range(21, 33)]])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(6))
    d = [int(c) for c in body]
    check = (10 - (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5]))
             % 10) % 10
    return body + str(check)


FIRST = ["Maria", "James", "Aisha", "Wei", "Olga", "Carlos", "Priya", "Tomas", "Fatima",
         "Noah", "Ingrid", "Kwame", "Elena", "Hiroshi", "Grace", "Omar"]
LAST = ["Okafor", "Smith", "Novak", "Garcia", "Chen", "Kowalski", "Haddad", "Lindqvist",
        "Mensah", "Rossi", "Tanaka", "Murphy", "Petrov", "Silva"]
STREETS = ["Maple Street", "Oak Avenue", "Harbor Road", "Elm Drive", "Cedar Lane",
           "Lincoln Boulevard", "Mill Court", "Sunset Way"]
CITIES = [("Springfield", "IL", "62704"), ("Portland", "OR", "97205"),
          ("Austin", "TX", "78701"), ("Albany", "NY", "12207"), ("Madison", "WI", "53703")]


def email() -> str:
    return (f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}"
            f"{rng.choice(['', str(rng.randint(1, 99))])}@"
            f"{rng.choice(['example.com', 'mail.example.org', 'bank.example.co.uk'])}")


def phone() -> str:
    area = rng.choice(["212", "415", "312", "617", "206", "303", "512"])
    line = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
    last = f"{rng.randint(0, 9999):04d}"
    return rng.choice([f"({area}) {line}-{last}", f"{area}-{line}-{last}",
                       f"+1 {area} {line} {last}", f"{area}.{line}.{last}"])


def ip() -> str:
    return rng.choice([f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                       f"{rng.randint(1, 254)}",
                       f"2001:db8:{rng.randint(1, 0xffff):x}::{rng.randint(1, 0xffff):x}"])


def date() -> str:
    y, m, d = rng.randint(1930, 2005), rng.randint(1, 12), rng.randint(1, 28)
    months = ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"]
    return rng.choice([f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}",
                       f"{months[m - 1]} {d}, {y}"])


TEMPLATES = {
    "CARD": ["Please charge my card {v} for the order.",
             "The card on file is {v}, expiring next year.",
             "I paid with {v} yesterday but it was declined.", "Card number: {v}",
             "Can you refund the payment made with {v}?", "my visa {v} got blocked again"],
    "IBAN": ["Send the refund to IBAN {v} please.", "Our supplier's account is {v}.",
             "IBAN: {v}", "Transfer 200 EUR to {v} by Friday."],
    "SSN": ["My social security number is {v}.", "SSN {v} was entered on the form.",
            "The applicant's SSN: {v}", "He wrote {v} in the tax box."],
    "NPI": ["The referring physician's NPI is {v}.", "Provider NPI: {v}",
            "Please bill under national provider identifier {v}."],
    "ROUTING": ["The routing number is {v} for direct deposit.", "ABA {v}, checking account.",
                "Wire via routing {v} to the escrow account."],
    "EMAIL": ["Write to {v} for the statement.", "Her email is {v}.", "cc {v} on the reply"],
    "PHONE": ["Call me on {v} after 5pm.", "The branch number is {v}.", "Fax: {v}"],
    "IP": ["The login came from {v} at midnight.", "Blocked address {v} in the firewall."],
    "DOB": ["Date of birth: {v}", "She was born on {v} in Ohio.", "DOB {v}, verified."],
    "MRN": ["MRN: {v} was admitted overnight.", "Medical record number {v} needs review."],
    "ACCOUNT": ["Account number {v} is overdrawn.", "Please close acct #{v} today."],
}
MAKERS = {"CARD": card, "IBAN": iban, "SSN": ssn, "NPI": npi, "ROUTING": routing,
          "EMAIL": email, "PHONE": phone, "IP": ip, "DOB": date,
          "MRN": lambda: f"{rng.randint(100000, 99999999):08d}",
          "ACCOUNT": lambda: "".join(rng.choice(string.digits) for _ in range(rng.randint(8, 12)))}
COUNTS = {"CARD": 45, "IBAN": 30, "SSN": 30, "NPI": 20, "ROUTING": 20, "EMAIL": 15,
          "PHONE": 15, "IP": 10, "DOB": 10, "MRN": 8, "ACCOUNT": 8}
NEGATIVES = [
    lambda: f"Order {bad_card()} shipped on Monday.",
    lambda: f"Reference {bad_card()} is not a card.",
    lambda: f"The test IBAN {iban(valid=False)} was rejected by the bank.",
    lambda: f"Invalid SSN {bad_ssn()} was typed in the demo.",
    lambda: f"Invoice number {rng.randint(10**9, 2 * 10**9 - 1)} is due in 30 days.",
    lambda: f"Tracking code {rng.randint(10**8, 10**9 - 1)} for your parcel.",
    lambda: f"We sold {rng.randint(1000, 9999)} units in {rng.randint(2001, 2024)}.",
    lambda: f"Call extension {rng.randint(100, 999)} for support.",
    lambda: f"The ratio was {rng.randint(1, 99)}.{rng.randint(1, 99)} percent last quarter.",
    lambda: (f"Part number {rng.randint(1000, 9999)}-{rng.randint(100, 999)}-"
             f"{rng.randint(10, 99)} is out of stock."),
    lambda: "Python 3.12 was released in October, with faster comprehensions.",
    lambda: f"Room {rng.randint(100, 999)} on floor {rng.randint(1, 30)} is free.",
]
NAMES = [
    lambda f, s: (f"Patient: {f} {s} was seen today.", [("PERSON", f"{f} {s}")]),
    lambda f, s: (f"Dr. {f} {s} signed the discharge note.", [("PERSON", f"{f} {s}")]),
    lambda f, s: (f"Please ask Mrs. {s} about the refill.", [("PERSON", s)]),
    lambda f, s: (f"Name: {f} {s}", [("PERSON", f"{f} {s}")]),
    lambda f, s: (f"I spoke with {f} {s} about the loan yesterday.",
                  [("PERSON", f"{f} {s}")]),
    lambda f, s: (f"{f} called to move the appointment.", [("PERSON", f)]),
]


def address() -> tuple[str, list[tuple[str, str]]]:
    number = rng.randint(1, 9999)
    street = rng.choice(STREETS)
    city, state, zip5 = rng.choice(CITIES)
    full = f"{number} {street}, {city}, {state} {zip5}"
    style = rng.randint(0, 2)
    if style == 0:
        return f"Ship it to {full}.", [("ADDRESS", full)]
    if style == 1:
        return f"She moved to {number} {street} last spring.", [("ADDRESS", f"{number} {street}")]
    return f"Mail the card to {full} by Friday.", [("ADDRESS", full)]


def split(text: str) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(2, 5))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def main() -> None:
    rows = []
    for kind, count in COUNTS.items():
        for _ in range(count):
            value = MAKERS[kind]()
            text = rng.choice(TEMPLATES[kind]).format(v=value)
            rows.append({"text": text, "labels": [{"kind": kind, "value": value}]})
    for _ in range(10):  # two identifiers in one sentence
        a, b = card(), email()
        rows.append({"text": f"Card {a} belongs to {b}, please verify.",
                     "labels": [{"kind": "CARD", "value": a}, {"kind": "EMAIL", "value": b}]})
    for _ in range(60):
        rows.append({"text": rng.choice(NEGATIVES)(), "labels": []})
    # Hard negatives, kept to be honest about what no offline detector can tell apart:
    # a Luhn-valid number with a card prefix that is an order number, a version string
    # shaped like an IP address. Each one found is a false positive.
    for _ in range(4):
        body = "4" + "".join(rng.choice(string.digits) for _ in range(14))
        rows.append({"text": f"Your order number is {body + luhn_digit(body)}.", "labels": []})
    for _ in range(3):
        rows.append({"text": f"Firmware {rng.randint(1, 9)}.{rng.randint(0, 9)}."
                             f"{rng.randint(0, 9)}.{rng.randint(10, 99)} fixes the bug.",
                     "labels": []})
    for _ in range(36):
        text, labels = rng.choice(NAMES)(rng.choice(FIRST), rng.choice(LAST))
        rows.append({"text": text, "labels": [{"kind": k, "value": v} for k, v in labels]})
    for _ in range(24):
        text, labels = address()
        rows.append({"text": text, "labels": [{"kind": k, "value": v} for k, v in labels]})
    rng.shuffle(rows)
    for row in rows:
        if rng.random() < 0.35:
            row["chunks"] = split(row["text"])
    with OUT.open("w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    print(f"wrote {len(rows)} sentences to {OUT}")


if __name__ == "__main__":
    main()
