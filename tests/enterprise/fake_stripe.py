# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A local fake of the Stripe endpoints billing and the licence store use, for the real
``stripe`` SDK.

Point ``stripe.StripeClient(base_addresses={"api": fake.url, "meter_events": fake.url})``
at it (Potluck: ``POTLUCK_BILLING_STRIPE_API_BASE`` and ``..._METER_EVENTS_BASE``). It
keeps state (customers, subscriptions, meters, meter event sessions, meter events),
replays a request with a known ``Idempotency-Key``, enforces what Stripe enforces on
meter events (unique ``identifier``: a repeat is dropped, as Stripe's stream drops it;
at most 100 events per call; a timestamp within 35 days and at most 5 minutes ahead;
a session token; one call in flight per customer and meter, else 429), and can be made
to fail: ``fail_next(mode, n)`` with mode ``500``, ``429``, ``timeout`` (no answer
in time, nothing recorded) or ``accept_then_timeout`` (events recorded, then no answer
in time: the sender never sees its 2xx). Connect transfers (``POST /v1/transfers`` to an
``acct_`` destination) are kept in ``transfers``; ``fail_next_transfer("accept_then_timeout")``
makes one transfer and then answers too late (a retry with its idempotency key gets the
same transfer back).

For the licence store (``checkout`` below): products, recurring prices, Checkout
sessions in subscription mode (with a hosted payment page at the session's ``url``, a
form whose "Pay" button completes it), subscriptions (retrieve, update, cancel), paid
invoices, payment intents, charges, invoice payments, refunds and disputes. Each change
emits the Stripe events Stripe would, as signed webhook deliveries built with the SDK's
own ``stripe.WebhookSignature.generate_signature_header``: to ``webhook_sink`` (a
callable taking the payload and the ``Stripe-Signature`` header, e.g. a Django test
client's post) or by HTTP to ``webhook_url``; ``hold_webhooks`` queues them in
``held`` instead, for a test to deliver in any order, twice, or late (``deliver``).
Every event ever emitted stays in ``webhook_events``.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

WEBHOOK_SECRET = "whsec_test_potluck"
API_VERSION = "2026-10-28.endive"
PERIOD_SECONDS = {"month": 30 * 86400, "year": 365 * 86400}


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``items[0][price]=p``) as nested dicts and lists."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_index = not last and parts[i + 1].isdigit()
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append({} if not last else None)
                if last:
                    node[index] = value
                else:
                    if not isinstance(node[index], (dict, list)):
                        node[index] = [] if nxt_is_index else {}
                    node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt_is_index else {})
    return out


@dataclass
class FakeStripe:
    api_key: str = "sk_test_potluck_fake"
    hang_seconds: float = 4.0  # longer than the client's timeout in tests
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    meters: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, float] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # by identifier
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # async error reports
    stream_calls: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    concurrency_violations: int = 0
    failures: list[str] = field(default_factory=list)
    idempotent: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfer_failures: list[str] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # -- the store's objects (Checkout and subscriptions) --
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkout_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoice_payments: list[dict[str, Any]] = field(default_factory=list)
    webhook_secret: str = WEBHOOK_SECRET
    webhook_sink: Any = None  # callable(payload: str, signature_header: str)
    webhook_url: str = ""
    hold_webhooks: bool = False
    held: list[dict[str, Any]] = field(default_factory=list)
    webhook_events: list[dict[str, Any]] = field(default_factory=list)
    delivery_answers: list[int] = field(default_factory=list)
    _last_created: int = 0
    _outbox: list[dict[str, Any]] = field(default_factory=list)
    _in_flight: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    url: str = ""

    # -- control -----------------------------------------------------------------------
    def fail_next(self, mode: str, n: int = 1) -> None:
        with self.lock:
            self.failures += [mode] * n

    def fail_next_transfer(self, mode: str, n: int = 1) -> None:
        with self.lock:
            self.transfer_failures += [mode] * n

    def transferred(self, destination: str) -> int:
        """Sum of the transfers the fake made to ``destination`` (minor units)."""
        with self.lock:
            return sum(t["amount"] for t in self.transfers.values()
                       if t["destination"] == destination)

    def total(self, customer: str) -> int:
        """Sum of the meter event values the fake holds for ``customer``."""
        with self.lock:
            return sum(int(e["payload"]["value"]) for e in self.events.values()
                       if e["payload"]["stripe_customer_id"] == customer)

    # -- the server ----------------------------------------------------------------------
    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(raw)))
        handler.send_header("request-id", "req_fake_" + secrets.token_hex(6))
        handler.end_headers()
        handler.wfile.write(raw)

    def _error(self, handler: BaseHTTPRequestHandler, status: int, message: str,
               kind: str = "invalid_request_error", code: str | None = None) -> None:
        self._send(handler, status, {"error": {"type": kind, "message": message,
                                               **({"code": code} if code else {})}})

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        auth = handler.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        if path.startswith("/c/pay/"):
            self._payment_page(handler, method, path.removeprefix("/c/pay/"))
            return
        if path == "/v2/billing/meter_event_stream":
            self._stream(handler, token, raw)
            return
        if token != self.api_key:
            self._error(handler, 401, "Invalid API Key provided", "invalid_request_error")
            return
        key = handler.headers.get("idempotency-key")
        if method == "POST" and key and key in self.idempotent:
            status, body = self.idempotent[key]
            self._send(handler, status, json.loads(body))
            return
        if path.startswith("/v2/"):
            params = json.loads(raw or b"{}")
        else:
            params = _nest(parse_qsl(raw.decode() if method == "POST" else parts.query,
                                     keep_blank_values=True))
        status, body = self._route(method, path, params)
        if method == "POST" and key and status < 500:
            self.idempotent[key] = (status, json.dumps(body).encode())
        if path == "/v1/transfers":
            with self.lock:
                mode = self.transfer_failures.pop(0) if self.transfer_failures else None
            if mode == "accept_then_timeout":
                time.sleep(self.hang_seconds)
        self._send(handler, status, body)
        if self.webhook_url:  # Stripe sends the events of a call after answering it
            self.flush()

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        now = int(time.time())
        with self.lock:
            if path.startswith(("/v1/products", "/v1/prices", "/v1/checkout/",
                                "/v1/subscriptions/", "/v1/invoice_payments",
                                "/v1/charges/")):
                return self._store_route(method, path, params)
            if path == "/v1/customers" and method == "POST":
                cid = "cus_" + secrets.token_hex(7)
                self.customers[cid] = {"id": cid, "object": "customer", "created": now,
                                       "name": params.get("name"),
                                       "metadata": params.get("metadata", {})}
                return 200, self.customers[cid]
            if path.startswith("/v1/customers/") and method == "GET":
                cid = path.rsplit("/", 1)[1]
                if cid not in self.customers:
                    return 404, {"error": {"type": "invalid_request_error",
                                           "message": f"No such customer: '{cid}'",
                                           "code": "resource_missing"}}
                return 200, self.customers[cid]
            if path == "/v1/subscriptions" and method == "POST":
                sid = "sub_" + secrets.token_hex(7)
                self.subscriptions[sid] = {"id": sid, "object": "subscription",
                                           "status": "active",
                                           "customer": params.get("customer"),
                                           "items": params.get("items")}
                return 200, self.subscriptions[sid]
            if path == "/v1/transfers" and method == "POST":
                destination = str(params.get("destination") or "")
                if not destination.startswith("acct_"):
                    return 400, {"error": {"type": "invalid_request_error",
                                           "message": f"No such destination: '{destination}'",
                                           "code": "resource_missing"}}
                tid = "tr_" + secrets.token_hex(7)
                self.transfers[tid] = {"id": tid, "object": "transfer", "created": now,
                                       "amount": int(params["amount"]),
                                       "currency": params.get("currency"),
                                       "destination": destination,
                                       "metadata": params.get("metadata", {})}
                return 200, self.transfers[tid]
            if path == "/v1/billing/meters":
                if method == "POST":
                    mid = "mtr_" + secrets.token_hex(7)
                    self.meters[mid] = {"id": mid, "object": "billing.meter",
                                        "status": "active", "created": now, **params}
                    return 200, self.meters[mid]
                return 200, {"object": "list", "url": path, "has_more": False,
                             "data": list(self.meters.values())}
            if path.startswith("/v1/billing/meters/") and path.endswith("/event_summaries"):
                mid = path.split("/")[4]
                meter = self.meters.get(mid)
                if meter is None:
                    return 404, {"error": {"type": "invalid_request_error",
                                           "message": "No such meter"}}
                start, end = int(params["start_time"]), int(params["end_time"])
                value = sum(int(e["payload"]["value"]) for e in self.events.values()
                            if e["payload"]["stripe_customer_id"] == params["customer"]
                            and e["event_name"] == meter["event_name"]
                            and start <= e["ts"] < end)
                return 200, {"object": "list", "url": path, "has_more": False, "data": [{
                    "id": "mtrusg_" + secrets.token_hex(4),
                    "object": "billing.meter_event_summary", "aggregated_value": value,
                    "start_time": start, "end_time": end, "meter": mid, "livemode": False}]}
            if path == "/v2/billing/meter_event_session" and method == "POST":
                token = "mes_token_" + secrets.token_hex(8)
                expires = datetime.now(UTC) + timedelta(minutes=15)
                self.sessions[token] = expires.timestamp()
                return 200, {"id": "mes_" + secrets.token_hex(6),
                             "object": "v2.billing.meter_event_session",
                             "authentication_token": token,
                             "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                             "expires_at": expires.isoformat().replace("+00:00", "Z"),
                             "livemode": False}
        return 404, {"error": {"type": "invalid_request_error",
                               "message": f"Unrecognized request URL ({method}: {path})"}}

    def _stream(self, handler: BaseHTTPRequestHandler, token: str, raw: bytes) -> None:
        with self.lock:
            expires = self.sessions.get(token)
            mode = self.failures.pop(0) if self.failures else None
        if expires is None or expires < time.time():
            self._send(handler, 401, {"error": {
                "type": "billing_meter_event_session_expired",
                "message": "The meter event session has expired."}})
            return
        if mode == "500":
            self._error(handler, 500, "An unknown error occurred", "api_error")
            return
        if mode == "429":
            self._error(handler, 429, "Too many requests", "rate_limit_error")
            return
        if mode == "timeout":
            time.sleep(self.hang_seconds)
            self._error(handler, 500, "too late", "api_error")
            return
        events = json.loads(raw or b"{}").get("events") or []
        if not 0 < len(events) <= 100:
            self._error(handler, 400, "events: between 1 and 100 per request")
            return
        pairs = {(e["payload"]["stripe_customer_id"], e["event_name"]) for e in events}
        with self.lock:
            self.stream_calls += 1
            self.batch_sizes.append(len(events))
            busy = [p for p in pairs if self._in_flight[p]]
            for p in pairs:
                self._in_flight[p] += 1
        try:
            if busy:
                with self.lock:
                    self.concurrency_violations += 1
                self._error(handler, 429, "Concurrent calls for one customer and meter",
                            "rate_limit_error")
                return
            self._record(events)
            if mode == "accept_then_timeout":
                time.sleep(self.hang_seconds)
            self._send(handler, 200, {})
        finally:
            with self.lock:
                for p in pairs:
                    self._in_flight[p] -= 1

    def _record(self, events: list[dict[str, Any]]) -> None:
        now = time.time()
        with self.lock:
            for e in events:
                ts = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
                if ts < now - 35 * 86400 or ts > now + 300:
                    self.rejected.append({"identifier": e.get("identifier"),
                                          "reason": "timestamp_out_of_range"})
                    continue
                if e["identifier"] in self.events:
                    self.duplicates += 1
                    continue
                self.events[e["identifier"]] = {**e, "ts": int(ts)}

    # -- the store: Checkout, subscriptions, invoices, refunds, disputes --------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(8)}"

    def _missing(self, what: str, oid: str) -> tuple[int, Any]:
        return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                               "message": f"No such {what}: '{oid}'"}}

    def _store_route(self, method: str, path: str, params: dict[str, Any]
                     ) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if path == "/v1/products" and method == "POST":
            pid = self._new_id("prod")
            self.products[pid] = {"id": pid, "object": "product", "name": params.get("name"),
                                  "metadata": params.get("metadata", {}), "active": True}
            return 200, self.products[pid]
        if path == "/v1/prices" and method == "POST":
            if params.get("product") not in self.products:
                return self._missing("product", str(params.get("product")))
            pid = self._new_id("price")
            recurring = params.get("recurring") or {}
            self.prices[pid] = {"id": pid, "object": "price", "product": params["product"],
                                "currency": params.get("currency"),
                                "unit_amount": int(params.get("unit_amount") or 0),
                                "recurring": {"interval": recurring.get("interval"),
                                              "interval_count": 1},
                                "metadata": params.get("metadata", {}), "active": True}
            return 200, self.prices[pid]
        if path == "/v1/checkout/sessions" and method == "POST":
            return self._create_session(params)
        if parts[:3] == ["v1", "checkout", "sessions"] and len(parts) == 4 and method == "GET":
            session = self.checkout_sessions.get(parts[3])
            return (200, session) if session else self._missing("checkout.session", parts[3])
        if parts[:2] == ["v1", "subscriptions"] and len(parts) == 3:
            sub = self.subscriptions.get(parts[2])
            if sub is None:
                return self._missing("subscription", parts[2])
            if method == "GET":
                return 200, sub
            if method == "DELETE":
                if sub["status"] == "canceled":
                    return 400, {"error": {"type": "invalid_request_error",
                                           "message": "This subscription is already canceled."}}
                self._cancel(sub["id"], at_period_end=False)
                return 200, self.subscriptions[sub["id"]]
            return self._update_subscription(sub, params)
        if path == "/v1/invoice_payments" and method == "GET":
            wanted = (params.get("payment") or {}).get("payment_intent")
            data = [p for p in self.invoice_payments
                    if p["payment"]["payment_intent"] == wanted]
            return 200, {"object": "list", "url": path, "has_more": False, "data": data[:1]}
        if parts[:2] == ["v1", "charges"] and len(parts) == 3 and method == "GET":
            charge = self.charges.get(parts[2])
            return (200, charge) if charge else self._missing("charge", parts[2])
        return 404, {"error": {"type": "invalid_request_error",
                               "message": f"Unrecognized request URL ({method}: {path})"}}

    def _create_session(self, params: dict[str, Any]) -> tuple[int, Any]:
        if params.get("mode") != "subscription":
            return 400, {"error": {"type": "invalid_request_error",
                                   "message": "this fake sells subscriptions only"}}
        items = params.get("line_items") or []
        if not items or items[0].get("price") not in self.prices:
            return 400, {"error": {"type": "invalid_request_error", "param": "line_items",
                                   "message": "No such price"}}
        for name in ("success_url", "cancel_url"):
            if not params.get(name):
                return 400, {"error": {"type": "invalid_request_error", "param": name,
                                       "message": f"Missing required param: {name}."}}
        sid = "cs_test_" + secrets.token_hex(12)
        self.checkout_sessions[sid] = {
            "id": sid, "object": "checkout.session", "mode": "subscription", "status": "open",
            "payment_status": "unpaid", "url": f"{self.url}/c/pay/{sid}",
            "client_reference_id": params.get("client_reference_id"),
            "customer": params.get("customer"), "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata", {}),
            "subscription_data": params.get("subscription_data", {}),
            "line_items": [{"price": i["price"], "quantity": int(i.get("quantity") or 1)}
                           for i in items],
            "success_url": params["success_url"], "cancel_url": params["cancel_url"],
            "subscription": None, "invoice": None, "created": int(time.time()),
            "livemode": False}
        return 200, self.checkout_sessions[sid]

    # -- the hosted payment page -----------------------------------------------------------
    def _payment_page(self, handler: BaseHTTPRequestHandler, method: str, sid: str) -> None:
        with self.lock:
            session = self.checkout_sessions.get(sid)
        if session is None:
            self._error(handler, 404, "No such checkout session")
            return
        if method == "POST":
            if session["status"] == "open":
                self.complete_checkout(sid, flush=bool(self.webhook_url))
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", sid)
            handler.send_response(303)
            handler.send_header("location", target)
            handler.send_header("content-length", "0")
            handler.end_headers()
            return
        price = self.prices[session["line_items"][0]["price"]]
        amount = f"{price['unit_amount'] / 100:.2f} {price['currency'].upper()}"
        email = html.escape(str(session.get("customer_email") or ""))
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Stripe Checkout "
                f"(test fake)</title></head><body><h1>Pay {html.escape(amount)} per "
                f"{price['recurring']['interval']}</h1><p>{email}"
                f"</p><form method='post'><button type='submit'>Pay</button></form>"
                f"<p><a href='{html.escape(session['cancel_url'])}'>Back</a></p></body></html>")
        raw = page.encode()
        handler.send_response(200)
        handler.send_header("content-type", "text/html; charset=utf-8")
        handler.send_header("content-length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    # -- what happens at Stripe (called by the payment page, or by tests) -------------------
    def complete_checkout(self, sid: str, *, flush: bool = True) -> dict[str, Any]:
        """The buyer pays: a customer (if new), an active subscription for one period, its
        paid invoice, and the events (``checkout.session.completed``,
        ``customer.subscription.created``, ``invoice.paid``). Returns the subscription."""
        try:
            return self._complete_checkout(sid)
        finally:
            if flush:
                self.flush()

    def _complete_checkout(self, sid: str) -> dict[str, Any]:
        with self.lock:
            session = self.checkout_sessions[sid]
            now = int(time.time())
            customer = session["customer"]
            if not customer:
                customer = self._new_id("cus")
                self.customers[customer] = {"id": customer, "object": "customer",
                                            "created": now,
                                            "email": session.get("customer_email"),
                                            "metadata": {}}
            price = self.prices[session["line_items"][0]["price"]]
            sub_id = self._new_id("sub")
            interval = price["recurring"]["interval"]
            item = {"id": self._new_id("si"), "object": "subscription_item", "price": price,
                    "quantity": 1, "current_period_start": now,
                    "current_period_end": now + PERIOD_SECONDS[interval]}
            sub = {"id": sub_id, "object": "subscription", "customer": customer,
                   "status": "active", "cancel_at_period_end": False, "canceled_at": None,
                   "metadata": dict((session.get("subscription_data") or {}).get("metadata")
                                    or {}),
                   "items": {"object": "list", "data": [item]}, "created": now,
                   "livemode": False}
            self.subscriptions[sub_id] = sub
            invoice = self._paid_invoice(sub, "subscription_create", price["unit_amount"],
                                         item["current_period_start"],
                                         item["current_period_end"])
            session.update(status="complete", payment_status="paid", customer=customer,
                           subscription=sub_id, invoice=invoice["id"])
            self.emit("checkout.session.completed", dict(session))
            self.emit("customer.subscription.created", json.loads(json.dumps(sub)))
            self.emit("invoice.paid", invoice)
            return sub

    def _paid_invoice(self, sub: dict[str, Any], reason: str, amount: int, start: int,
                      end: int) -> dict[str, Any]:
        now = int(time.time())
        price = sub["items"]["data"][0]["price"]
        in_id, pi_id, ch_id = self._new_id("in"), self._new_id("pi"), self._new_id("ch")
        invoice = {
            "id": in_id, "object": "invoice", "customer": sub["customer"], "status": "paid",
            "billing_reason": reason, "currency": price["currency"], "amount_due": amount,
            "amount_paid": amount, "total": amount, "number": f"FAKE-{len(self.invoices) + 1:04d}",
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": sub["id"], "metadata": dict(sub["metadata"])}},
            "lines": {"object": "list", "data": [{
                "id": self._new_id("il"), "object": "line_item", "amount": amount,
                "description": price.get("nickname") or "Potluck licence",
                "period": {"start": start, "end": end}}]},
            "period_start": start, "period_end": end,
            "status_transitions": {"paid_at": now}, "created": now, "livemode": False}
        self.invoices[in_id] = invoice
        self.charges[ch_id] = {"id": ch_id, "object": "charge", "amount": amount,
                               "amount_refunded": 0, "refunded": False,
                               "currency": price["currency"], "customer": sub["customer"],
                               "payment_intent": pi_id, "paid": True, "created": now,
                               "refunds": {"object": "list", "data": []}}
        self.invoice_payments.append({"id": self._new_id("inpay"), "object": "invoice_payment",
                                      "invoice": in_id, "amount_paid": amount,
                                      "payment": {"type": "payment_intent",
                                                  "payment_intent": pi_id},
                                      "status": "paid"})
        sub["latest_charge"] = ch_id  # the fake's own bookkeeping, for refund()/dispute()
        return json.loads(json.dumps(invoice))

    def renew(self, sub_id: str) -> dict[str, Any]:
        """The next period starts and is paid: ``invoice.paid`` then
        ``customer.subscription.updated``. Returns the invoice."""
        invoice = self._renew(sub_id)
        self.flush()
        return invoice

    def _renew(self, sub_id: str) -> dict[str, Any]:
        with self.lock:
            sub = self.subscriptions[sub_id]
            item = sub["items"]["data"][0]
            start = item["current_period_end"]
            end = start + PERIOD_SECONDS[item["price"]["recurring"]["interval"]]
            item.update(current_period_start=start, current_period_end=end)
            invoice = self._paid_invoice(sub, "subscription_cycle",
                                         item["price"]["unit_amount"], start, end)
            self.emit("invoice.paid", invoice)
            self.emit("customer.subscription.updated", json.loads(json.dumps(sub)))
            return invoice

    def _update_subscription(self, sub: dict[str, Any], params: dict[str, Any]
                             ) -> tuple[int, Any]:
        if "cancel_at_period_end" in params:
            sub["cancel_at_period_end"] = str(params["cancel_at_period_end"]).lower() == "true"
        items = params.get("items") or []
        proration = None
        if items:
            new_price = self.prices.get(items[0].get("price"))
            if new_price is None:
                return 400, {"error": {"type": "invalid_request_error", "param": "items",
                                       "message": "No such price"}}
            item = sub["items"]["data"][0]
            old = item["price"]["unit_amount"]
            item["price"] = new_price
            if params.get("proration_behavior") == "always_invoice" and \
                    new_price["unit_amount"] > old:
                proration = (new_price["unit_amount"] - old, item["current_period_start"],
                             item["current_period_end"])
        self.emit("customer.subscription.updated", json.loads(json.dumps(sub)))
        if proration is not None:
            self.emit("invoice.paid", self._paid_invoice(sub, "subscription_update", *proration))
        return 200, sub

    def cancel(self, sub_id: str, *, at_period_end: bool) -> None:
        """Cancel now (``customer.subscription.deleted``) or at the period's end
        (``customer.subscription.updated`` with ``cancel_at_period_end``)."""
        self._cancel(sub_id, at_period_end=at_period_end)
        self.flush()

    def _cancel(self, sub_id: str, *, at_period_end: bool) -> None:
        with self.lock:
            sub = self.subscriptions[sub_id]
            if at_period_end:
                sub["cancel_at_period_end"] = True
                self.emit("customer.subscription.updated", json.loads(json.dumps(sub)))
                return
            sub.update(status="canceled", canceled_at=int(time.time()))
            self.emit("customer.subscription.deleted", json.loads(json.dumps(sub)))

    def refund(self, sub_id: str) -> dict[str, Any]:
        """Refund the subscription's last payment in full: ``charge.refunded``."""
        with self.lock:
            charge = self.charges[self.subscriptions[sub_id]["latest_charge"]]
            charge.update(amount_refunded=charge["amount"], refunded=True)
            charge["refunds"]["data"].append({"id": self._new_id("re"), "object": "refund",
                                              "amount": charge["amount"],
                                              "reason": "requested_by_customer"})
            self.emit("charge.refunded", json.loads(json.dumps(charge)))
        self.flush()
        return charge

    def dispute(self, sub_id: str) -> dict[str, Any]:
        """The buyer's bank disputes the last payment: ``charge.dispute.created``."""
        with self.lock:
            charge = self.charges[self.subscriptions[sub_id]["latest_charge"]]
            dispute = {"id": self._new_id("dp"), "object": "dispute", "charge": charge["id"],
                       "payment_intent": charge["payment_intent"], "amount": charge["amount"],
                       "currency": charge["currency"], "reason": "fraudulent",
                       "status": "needs_response", "created": int(time.time())}
            self.emit("charge.dispute.created", dispute)
        self.flush()
        return dispute

    # -- events and their signed deliveries -------------------------------------------------
    def emit(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Record an event (times strictly increasing, as Stripe's order) and queue its
        delivery (``flush`` sends the queue, never under the lock: the endpoint may call
        this fake back), unless ``hold_webhooks`` keeps it in ``held``."""
        with self.lock:
            created = max(int(time.time()), self._last_created + 1)
            self._last_created = created
            event = {"id": "evt_" + secrets.token_hex(12), "object": "event",
                     "api_version": API_VERSION, "created": created, "type": kind,
                     "livemode": False, "pending_webhooks": 1,
                     "request": {"id": None, "idempotency_key": None},
                     "data": {"object": obj}}
            self.webhook_events.append(event)
            (self.held if self.hold_webhooks else self._outbox).append(event)
        return event

    def flush(self) -> list[int]:
        """Deliver the queued events in order (events made by calls the SDK made are
        queued: with ``webhook_url`` they are delivered once the call is answered; with a
        ``webhook_sink`` the test calls this, on its own thread). Returns the statuses."""
        answers = []
        while True:
            with self.lock:
                if not self._outbox:
                    return answers
                event = self._outbox.pop(0)
            answers.append(self.deliver(event))

    def deliver(self, event: dict[str, Any], *, timestamp: int | None = None) -> int:
        """One signed delivery of ``event`` (Stripe signs each delivery when it sends it);
        returns the endpoint's HTTP status."""
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(
            payload, self.webhook_secret, timestamp)
        if self.webhook_sink is not None:
            status = int(self.webhook_sink(payload, header))
        elif self.webhook_url:
            request = urllib.request.Request(
                self.webhook_url, data=payload.encode(), method="POST",
                headers={"content-type": "application/json", "stripe-signature": header})
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
        else:
            raise AssertionError("the Stripe fake has no webhook endpoint to deliver to")
        self.delivery_answers.append(status)
        return status

    def release(self) -> list[dict[str, Any]]:
        """Take the held events (for a test to deliver in its own order)."""
        with self.lock:
            events, self.held = self.held, []
        return events

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.webhook_events if e["type"] == kind]
