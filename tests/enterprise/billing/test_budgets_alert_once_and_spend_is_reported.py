# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Budgets through the API (admins write, others read, other orgs get 404), their alerts
made once per period from the ledger and delivered by email (Django's mail backend) and
a signed webhook, the console banner, and spend by day and model as JSON and CSV."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from billing_helpers import DEMO_BOOK, price_all, usage_record
from django.core import mail

from potluck.accounts import services as accounts
from potluck.usage import services as usage
from potluck_enterprise.billing import budgets, pricebook
from potluck_enterprise.billing.models import BudgetAlert


@pytest.fixture
def webhook_sink():
    received: list[tuple[bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((body, self.headers.get("x-potluck-signature", "")))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def test_budget_api_permissions_and_tenancy(db, billing_on, org, other_org, user_client):
    billing_on()
    admin, member = user_client(org, "admin"), user_client(org, "member")
    key, _ = accounts.create_api_key(org, "ci", scopes=["inference"])
    made = admin.post("/api/billing/budgets", {"period": "day", "api_key": str(key.pk),
                                                "soft_limit": "1.50", "hard_limit": "2"},
                      format="json")
    assert made.status_code == 201, made.content
    budget = made.json()
    assert budget["description"] == "the daily budget of API key 'ci'"
    assert member.post("/api/billing/budgets", {"period": "month", "hard_limit": "5"},
                       format="json").status_code == 403
    assert member.get("/api/billing/budgets").json()[0]["id"] == budget["id"]
    bad = admin.post("/api/billing/budgets", {"period": "month", "hard_limit": "1",
                                              "soft_limit": "2"}, format="json")
    assert bad.status_code == 400 and "soft_limit" in bad.json()
    stranger = user_client(other_org, "owner")
    assert stranger.get(f"/api/billing/budgets/{budget['id']}").status_code == 404
    assert stranger.delete(f"/api/billing/budgets/{budget['id']}").status_code == 404


def test_limits_alert_once_by_email_webhook_and_banner(transactional_db, billing_on,
                                                       user_client, webhook_sink):
    url, received = webhook_sink
    billing_on()
    pricebook.create_version(DEMO_BOOK)
    org = accounts.create_organization("Acme")
    admin = user_client(org, "admin")
    made = admin.post("/api/billing/budgets", {
        "period": "month", "soft_limit": "0.02", "hard_limit": "0.05",
        "emails": ["finance@acme.test"], "webhook_url": url}, format="json").json()
    secret = made["webhook_secret"]
    # Each request: 10,000 output tokens of chat-a = 0.011 + the 0.00001 fee.
    for _ in range(3):
        usage.record_events([usage_record(org, prompt=0, completion=10_000)])
        price_all()
    budgets.deliver_pending()
    alerts = BudgetAlert.objects.filter(budget_id=made["id"])
    assert [a.level for a in alerts] == ["soft"]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["finance@acme.test"]
    assert "soft limit" in mail.outbox[0].subject
    body, signature = received[0]
    assert signature == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert json.loads(body)["type"] == "budget.soft_limit_reached"
    for _ in range(3):
        usage.record_events([usage_record(org, prompt=0, completion=10_000)])
        price_all()
    budgets.deliver_pending()
    budgets.deliver_pending()  # nothing is sent twice
    assert sorted(a.level for a in alerts.all()) == ["hard", "soft"]
    assert len(mail.outbox) == 2 and len(received) == 2
    banners = admin.get("/api/billing/status").json()["banners"]
    assert banners[0]["kind"] == "budget_hard" and "resets at" in banners[0]["message"]
    listed = admin.get("/api/billing/budgets").json()[0]
    assert Decimal(listed["spent"]) == 6 * (Decimal("10000") * Decimal("1.10") / 10**6
                                            + Decimal("0.00001"))
    assert listed["spent_display"] == "0.07"


def test_spend_by_day_and_model_as_json_and_csv(transactional_db, billing_on, user_client):
    billing_on()
    pricebook.create_version(DEMO_BOOK)
    org = accounts.create_organization("Acme")
    usage.record_events([usage_record(org, model="chat-a", prompt=1_000_000, completion=0),
                         usage_record(org, model="chat-b", prompt=0, completion=1_000_000)])
    price_all()
    viewer = user_client(org, "viewer")
    rows = viewer.get("/api/billing/spend?group_by=day,model").json()["rows"]
    by_model = {r["model"]: r for r in rows}
    assert by_model["chat-a"]["amount_display"] == "0.27"  # fee 0.00001 rounds away
    assert by_model["chat-b"]["amount_display"] == "2.19"
    csv = viewer.get("/api/billing/spend?group_by=model&format=csv")
    assert csv["content-type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0] == "model,amount,list_amount,quantity,lines"
    assert lines[1].startswith("chat-a,0.27001")
    bad = viewer.get("/api/billing/spend?group_by=planet")
    assert bad.status_code == 400 and "group_by" in bad.json()
