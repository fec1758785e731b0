# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Helpers of the store's tests: a plans document, signing in through the mailed link,
buying through Stripe Checkout (the fake's), reading what the store issued."""

from __future__ import annotations

import re
from typing import Any

PLANS: dict[str, Any] = {"currency": "USD", "plans": [
    {"key": "team", "title": "Team", "features": ["sso", "billing"], "grace_days": 14,
     "trial": {"days": 14, "seats": 5},
     "prices": [{"seats": 10, "month": 9900, "year": 99000},
                {"seats": 50, "month": 39900, "year": 399000}]},
    {"key": "business", "title": "Business",
     "features": ["sso", "billing", "credits", "compliance"], "grace_days": 30,
     "prices": [{"seats": 50, "month": 99900, "year": 999000}]},
]}

LINK = re.compile(r"https?://\S+/store/sign-in/(\S+)")


def mailed_token(outbox: list[Any], email: str) -> str:
    """The token of the newest sign-in link mailed to ``email``."""
    for message in reversed(outbox):
        if email.strip().lower() in message.to and "sign-in" in message.body:
            found = LINK.search(message.body)
            assert found, message.body
            return found.group(1)
    raise AssertionError(f"no sign-in link was mailed to {email}")


def sign_in(client: Any, outbox: list[Any], email: str, next_path: str = "/store/account"
            ) -> Any:
    """Sign ``client`` in to the store as ``email`` the way a buyer does."""
    asked = client.post("/store/sign-in", {"email": email, "next": next_path})
    assert asked.status_code == 200, asked.content[:500]
    token = mailed_token(outbox, email)
    confirmed = client.post(f"/store/sign-in/{token}")
    assert confirmed.status_code == 302, confirmed.content[:500]
    return confirmed


def price_of(plan: str, seats: int, term: str = "month") -> Any:
    from potluck_enterprise.store.models import PlanPrice

    return PlanPrice.objects.get(plan_id=plan, seats=seats, term=term, active=True)


def buy(client: Any, fake: Any, *, plan: str = "team", seats: int = 10, term: str = "month",
        installation_id: str = "", licensee: str = "Acme Corp") -> dict[str, Any]:
    """Buy through the store's page and pay on the fake's Checkout; returns the Stripe
    subscription (its events are delivered as the fake's settings say)."""
    price = price_of(plan, seats, term)
    answer = client.post("/store/checkout", {"price": price.pk, "licensee": licensee,
                                             "installation_id": installation_id})
    assert answer.status_code == 303, answer.content[:800]
    session_id = answer["Location"].rsplit("/", 1)[1]
    assert fake.checkout_sessions[session_id]["status"] == "open"
    return fake.complete_checkout(session_id)


# -- looking for the issuer's private key -------------------------------------------------

def secret_forms(private_pem: bytes) -> list[str]:
    """The private key as it could be written anywhere: PEM, its base64 lines, DER and
    the raw 32 bytes in hex, base64 and Python's bytes repr."""
    import base64

    from cryptography.hazmat.primitives import serialization

    from potluck_enterprise.licensing import format

    key = format.load_private_key(private_pem)
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    lines = [ln for ln in private_pem.decode().splitlines() if "-----" not in ln]
    return [private_pem.decode().strip(), *lines, raw.hex(), base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="), base64.b64encode(der).decode(),
            repr(raw)[2:-1]]


def leaks(text: str, forms: list[str]) -> list[str]:
    """The forms of the key found in ``text`` (their first characters only)."""
    return [form[:12] + "..." for form in forms if form and form in text]


def strings(value: object) -> list[str]:
    """Every key and value in a JSON value, as text."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [str(value)]


def dump_tables(execute: Any) -> tuple[list[str], str]:
    """(table names, every value of every row of every table as text, JSON unpacked);
    ``execute(sql)`` returns the rows of a query."""
    import json

    tables = [row[0] for row in execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        "current_schema() AND table_type = 'BASE TABLE'")]
    out: list[str] = []
    for table in tables:
        for (row,) in execute(f'SELECT row_to_json(t)::text FROM "{table}" t'):
            out.append(row)
            out.extend(strings(json.loads(row)))
    return tables, "\n".join(out)
