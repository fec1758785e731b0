# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A local fake of the Stripe endpoints billing uses, for the real ``stripe`` SDK.

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
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

WEBHOOK_SECRET = "whsec_test_potluck"


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
    lock: threading.Lock = field(default_factory=threading.Lock)
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

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        now = int(time.time())
        with self.lock:
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
