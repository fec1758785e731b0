# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Stripe behind an adapter of our own: the only module that speaks to Stripe.

Potluck's priced ledger in PostgreSQL is the source of truth; Stripe is the invoicing
sink. Stripe now steers new usage billing to another product, so everything billing
needs from Stripe is this small interface (``StripeBilling``); replacing the sink means
writing another class with these methods.

Meter events go through Stripe's v2 **meter event stream**: up to ``MAX_EVENTS_PER_CALL``
(100) events per call, authenticated by a meter event session (15 minutes; renewed a
minute early, or at once on a 401), validated asynchronously by Stripe. Each event's
``identifier`` is a priced line's id, and Stripe drops an identifier it has seen in the
last 24 hours, so resending a batch whose answer was lost never counts twice. One meter,
valued in the currency's minor unit (sum aggregation), because v1 meters have no
dimensions: one meter for the money keeps Stripe's invoice equal to our ledger whatever
the price book does (windows, overrides, per-request fees), where per-token-kind meters
would need every model's prices, windows and discounts mirrored as Stripe prices.

Errors: ``StripeUnavailable`` (retry later: connection failures and timeouts, 409, 429,
5xx) and ``StripeRejected`` (a 4xx that a retry will not change).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings

MAX_EVENTS_PER_CALL = 100
SESSION_MARGIN_SECONDS = 60


class StripeNotConfigured(Exception):
    """No Stripe API key is set (``POTLUCK_BILLING_STRIPE_API_KEY``)."""


class StripeUnavailable(Exception):
    """Stripe could not be reached or asked us to slow down; try again later.

    ``unanswered``: no answer came (a timeout or a dropped connection), so Stripe may
    still be working on the call."""

    def __init__(self, message: str, *, unanswered: bool = False) -> None:
        super().__init__(message)
        self.unanswered = unanswered


class StripeRejected(Exception):
    """Stripe refused the call for a reason a retry will not change."""


@dataclass(frozen=True)
class MeterEventIn:
    """One meter event: ``value`` in whole minor units, at ``timestamp`` (aware)."""

    identifier: str
    customer_id: str
    value: int
    timestamp: datetime


def _classify(exc: stripe.StripeError) -> Exception:
    status = getattr(exc, "http_status", None)
    text = f"{exc.__class__.__name__}: {getattr(exc, 'user_message', None) or exc}"[:200]
    if isinstance(exc, stripe.APIConnectionError) or status is None or status in (409, 429) \
            or status >= 500:
        return StripeUnavailable(text, unanswered=isinstance(exc, stripe.APIConnectionError))
    return StripeRejected(text)


class StripeBilling:
    """What billing asks of Stripe. ``client`` is a ``stripe.StripeClient`` (tests point
    its base addresses at a local fake); ``event_name`` is the meter's event name."""

    def __init__(self, client: stripe.StripeClient, event_name: str) -> None:
        self.client = client
        self.event_name = event_name
        self._session_lock = threading.Lock()
        self._session: tuple[str, float] | None = None  # (token, expires at, epoch)

    @classmethod
    def from_settings(cls) -> StripeBilling:
        """The adapter for ``POTLUCK_BILLING_STRIPE_*``; raises ``StripeNotConfigured``."""
        key = settings.BILLING_STRIPE_API_KEY
        if not key:
            raise StripeNotConfigured("set POTLUCK_BILLING_STRIPE_API_KEY to use Stripe")
        bases: dict[str, str] = {}
        if settings.BILLING_STRIPE_API_BASE:
            bases["api"] = settings.BILLING_STRIPE_API_BASE
        if settings.BILLING_STRIPE_METER_EVENTS_BASE:
            bases["meter_events"] = settings.BILLING_STRIPE_METER_EVENTS_BASE
        client = stripe.StripeClient(
            key, base_addresses=bases,  # type: ignore[arg-type]
            http_client=stripe.RequestsClient(timeout=settings.BILLING_STRIPE_TIMEOUT_SECONDS),
            max_network_retries=0)  # the outbox retries, with its own back-off
        return cls(client, settings.BILLING_STRIPE_METER_EVENT)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise _classify(exc) from exc

    # -- customers and subscriptions ---------------------------------------------------
    def create_customer(self, organization_id: str, name: str) -> str:
        """A new customer for the organization; the idempotency key makes a retried call
        return the same customer. Returns its id."""
        customer = self._call(
            self.client.v1.customers.create,
            params={"name": name, "metadata": {"potluck_organization": organization_id}},
            options={"idempotency_key": f"potluck-customer-{organization_id}"})
        return customer.id

    def customer_exists(self, customer_id: str) -> bool:
        try:
            customer = self.client.v1.customers.retrieve(customer_id)
        except stripe.InvalidRequestError as exc:
            if getattr(exc, "http_status", None) == 404:
                return False
            raise _classify(exc) from exc
        except stripe.StripeError as exc:
            raise _classify(exc) from exc
        return not getattr(customer, "deleted", False)

    def subscribe(self, organization_id: str, customer_id: str, price_id: str
                  ) -> tuple[str, str]:
        """Subscribe the customer to the metered price (idempotent per organization and
        price); returns (subscription id, status)."""
        sub = self._call(
            self.client.v1.subscriptions.create,
            params={"customer": customer_id, "items": [{"price": price_id}],
                    "metadata": {"potluck_organization": organization_id}},
            options={"idempotency_key": f"potluck-subscription-{organization_id}-{price_id}"})
        return sub.id, sub.status

    # -- the meter ------------------------------------------------------------------------
    def ensure_meter(self, display_name: str = "Potluck usage") -> str:
        """The id of the meter for ``event_name`` (sum of ``value`` per customer),
        created if there is none."""
        for meter in self._call(self.client.v1.billing.meters.list,
                                params={"limit": 100}).data:
            if meter.event_name == self.event_name and meter.status == "active":
                return meter.id
        meter = self._call(
            self.client.v1.billing.meters.create,
            params={"display_name": display_name, "event_name": self.event_name,
                    "default_aggregation": {"formula": "sum"},
                    "customer_mapping": {"type": "by_id",
                                         "event_payload_key": "stripe_customer_id"},
                    "value_settings": {"event_payload_key": "value"}},
            options={"idempotency_key": f"potluck-meter-{self.event_name}"})
        return meter.id

    def meter_total(self, meter_id: str, customer_id: str, start: datetime, end: datetime
                    ) -> int:
        """The meter's aggregated value for the customer over [start, end) (Stripe's event
        summaries), in minor units."""
        page = self._call(self.client.v1.billing.meters.event_summaries.list, meter_id,
                          params={"customer": customer_id, "start_time": int(start.timestamp()),
                                  "end_time": int(end.timestamp()), "limit": 100})
        return int(sum(s.aggregated_value for s in page.data))

    # -- meter events ---------------------------------------------------------------------
    def _token(self, renew: bool = False) -> str:
        with self._session_lock:
            if renew or self._session is None or \
                    self._session[1] - SESSION_MARGIN_SECONDS <= time.time():
                session = self._call(self.client.v2.billing.meter_event_session.create)
                expires = session.expires_at
                expires_epoch = (expires.timestamp() if isinstance(expires, datetime) else
                                 datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
                                 .timestamp())
                self._session = (session.authentication_token, expires_epoch)
            return self._session[0]

    def send_meter_events(self, events: list[MeterEventIn]) -> None:
        """Send up to ``MAX_EVENTS_PER_CALL`` events in one call. Returns on a 2xx; raises
        ``StripeUnavailable`` or ``StripeRejected``."""
        if not events:
            return
        if len(events) > MAX_EVENTS_PER_CALL:
            raise ValueError(f"at most {MAX_EVENTS_PER_CALL} events per call")
        params = {"events": [{
            "event_name": self.event_name, "identifier": e.identifier,
            "payload": {"stripe_customer_id": e.customer_id, "value": str(e.value)},
            "timestamp": e.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        } for e in events]}
        for attempt in (0, 1):
            token = self._token(renew=attempt == 1)
            try:
                self.client.v2.billing.meter_event_stream.create(
                    params=params, options={"api_key": token})  # type: ignore[arg-type]
                return
            except stripe.AuthenticationError as exc:
                if attempt == 0:
                    continue  # the session expired early: renew once
                raise _classify(exc) from exc
            except stripe.StripeError as exc:
                raise _classify(exc) from exc


def verify_webhook(payload: bytes, signature: str | None, secret: str) -> Any:
    """The verified event (``stripe.Webhook.construct_event``, tolerance 300 s); raises
    ``stripe.SignatureVerificationError`` or ``ValueError`` (not JSON)."""
    return stripe.Webhook.construct_event(payload, signature, secret, tolerance=300)
