# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store's pages for buyers (server-rendered, under /store/; thin: services decide).

``/store/`` the plans and the sign-in form (``installation_id`` and ``seats`` in the query
come from a console's buy link and are carried through); ``/store/sign-in`` mails a link;
``/store/sign-in/<token>`` asks to confirm, and signs in on POST; ``/store/account`` the
buyer's licences (downloads) and subscriptions, a free trial and buying; ``/store/trial``,
``/store/checkout`` (to Stripe Checkout) and its return page; ``/store/licences/<id>`` a
download; ``/store/subscriptions/<id>/cancel`` and ``/change``; ``/store/sign-out``.
Where the store is off (no issuer key configured), every one of them is the console's
"page not found": a customer installation has no store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, re_path
from django.views.decorators.http import require_GET, require_POST

from potluck import console
from potluck.errors import PotluckError
from potluck_enterprise.billing.stripe_adapter import (
    StripeNotConfigured,
    StripeRejected,
    StripeUnavailable,
)
from potluck_enterprise.store import accounts, checkout, plans, signing, trials
from potluck_enterprise.store.models import IssuedLicence, StoreAccount, Term, Trial

log = logging.getLogger(__name__)

STORE_CSP = "; ".join([
    "default-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
    "object-src 'none'", "base-uri 'self'", "frame-ancestors 'none'",
])

View = Callable[..., HttpResponse]


def store_page(view: View) -> View:
    """Answers only where the store is on; sets the store's headers."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not signing.enabled():
            return console.not_found(request) if request.method in ("GET", "HEAD") else \
                HttpResponse("no such page", status=404, content_type="text/plain")
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = STORE_CSP
        response["Cache-Control"] = "no-store"
        return response

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _base_url(request: HttpRequest) -> str:
    return (settings.STORE_PUBLIC_URL or settings.PUBLIC_URL
            or request.build_absolute_uri("/")).rstrip("/")


def _carry(request: HttpRequest) -> dict[str, str]:
    """The console's ``installation_id`` and ``seats``, kept from page to page."""
    source = request.POST if request.method == "POST" else request.GET
    carried = {"installation_id": (source.get("installation_id") or "").strip()[:100],
               "seats": (source.get("seats") or "").strip()[:9]}
    return {k: v for k, v in carried.items() if v}


def _seats_wanted(carried: dict[str, str]) -> int:
    try:
        return max(1, int(carried.get("seats", "1")))
    except ValueError:
        return 1


def _suggested_price(catalogue: list[dict[str, Any]], seats: int) -> int | None:
    """The smallest monthly tier (else any) with room for ``seats``."""
    candidates = [p for entry in catalogue for p in entry["prices"] if p.seats >= seats]
    if not candidates:
        return None
    best = min(candidates, key=lambda p: (p.term != Term.MONTH, p.seats, p.amount))
    return best.pk


def _context(request: HttpRequest, account: StoreAccount | None, **extra: Any
             ) -> dict[str, Any]:
    catalogue = plans.catalogue()
    carried = _carry(request)
    for entry in catalogue:
        entry["labels"] = [(p, _price_label(p)) for p in entry["prices"]]
    return {
        "account": account, "catalogue": catalogue, "carried": carried,
        "carried_query": urlencode(carried),
        "suggested_price": _suggested_price(catalogue, _seats_wanted(carried)),
        "trial_plans": [e["plan"] for e in catalogue if e["plan"].has_trial],
        "trial_taken": Trial.objects.filter(domain=account.domain).first() if account else None,
        "price_choices": [(p.pk, label) for e in catalogue for p, label in e["labels"]],
        **extra,
    }


def _price_label(price: Any) -> str:
    term = "month" if price.term == Term.MONTH else "year"
    return (f"{price.plan.title}: up to {price.seats} seats, "
            f"{plans.format_amount(price.amount, price.currency)} per {term}")


def _render(request: HttpRequest, template: str, context: dict[str, Any],
            status: int = 200) -> HttpResponse:
    return render(request, f"store/{template}", context, status=status)


def _error(request: HttpRequest, exc: PotluckError, account: StoreAccount | None,
           template: str = "account.html") -> HttpResponse:
    return _render(request, template, _context(request, account, error=exc.message,
                                               error_field=exc.field), exc.status)


def _stripe_error(request: HttpRequest, exc: Exception, account: StoreAccount | None
                  ) -> HttpResponse:
    log.warning("store: Stripe call failed (%s)", exc.__class__.__name__)
    error = PotluckError("payments are not available right now: try again in a few minutes")
    error.status = 503
    return _error(request, error, account)


def _account_or_sign_in(request: HttpRequest) -> StoreAccount | HttpResponse:
    account = accounts.signed_in(request)
    if account is not None:
        return account
    # After signing in, a page comes back; a form's POST does not (it is sent again).
    back = request.get_full_path() if request.method == "GET" else "/store/account"
    query = urlencode({"next": back, **_carry(request)})
    return HttpResponseRedirect(f"/store/?{query}")


# -- pages -------------------------------------------------------------------------------

@store_page
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The plans, and signing in (or a link to the account, when signed in)."""
    return _render(request, "index.html", _context(
        request, accounts.signed_in(request),
        next=accounts.safe_next(request.GET.get("next") or "/store/account?"
                                + urlencode(_carry(request)))))


@store_page
@require_POST
def request_sign_in(request: HttpRequest) -> HttpResponse:
    next_path = accounts.safe_next(request.POST.get("next") or "/store/account")
    try:
        link = accounts.request_link(request.POST.get("email", ""), base_url=_base_url(request),
                                     next_path=next_path,
                                     client_ip=request.META.get("REMOTE_ADDR"))
    except PotluckError as exc:
        return _render(request, "index.html", _context(
            request, None, error=exc.message, error_field=exc.field, next=next_path,
            email=request.POST.get("email", "")[:254]), exc.status)
    return _render(request, "sent.html", {"email": link.email,
                                          "minutes": settings.STORE_SIGN_IN_LINK_MINUTES})


@store_page
def confirm_sign_in(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a button (mail scanners that open links use nothing); POST: sign in."""
    if request.method == "POST":
        try:
            account, next_path = accounts.redeem(token)
        except PotluckError as exc:
            return _render(request, "confirm.html", {"error": exc.message}, exc.status)
        accounts.sign_in(request, account)
        return HttpResponseRedirect(accounts.safe_next(next_path))
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405)
    try:
        link = accounts.pending_link(token)
    except PotluckError as exc:
        return _render(request, "confirm.html", {"error": exc.message}, exc.status)
    return _render(request, "confirm.html", {"email": link.email})


@store_page
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    accounts.sign_out(request)
    return HttpResponseRedirect("/store/")


@store_page
@require_GET
def account_page(request: HttpRequest) -> HttpResponse:
    account = _account_or_sign_in(request)
    if isinstance(account, HttpResponse):
        return account
    return _render(request, "account.html", _context(request, account))


@store_page
@require_POST
def start_trial(request: HttpRequest) -> HttpResponse:
    account = _account_or_sign_in(request)
    if isinstance(account, HttpResponse):
        return account
    try:
        licence = trials.start(account, request.POST.get("plan", ""),
                               installation_id=request.POST.get("installation_id", ""),
                               licensee=request.POST.get("licensee", ""))
    except PotluckError as exc:
        return _error(request, exc, account)
    return HttpResponseRedirect(f"/store/account?issued={licence.license_id}")


@store_page
@require_POST
def start_checkout(request: HttpRequest) -> HttpResponse:
    account = _account_or_sign_in(request)
    if isinstance(account, HttpResponse):
        return account
    base = _base_url(request)
    try:
        url = checkout.start(
            account, request.POST.get("price"),
            installation_id=request.POST.get("installation_id", ""),
            licensee=request.POST.get("licensee", ""),
            success_url=f"{base}/store/checkout/done?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}/store/account")
    except PotluckError as exc:
        return _error(request, exc, account)
    except (StripeUnavailable, StripeRejected, StripeNotConfigured) as exc:
        return _stripe_error(request, exc, account)
    return HttpResponseRedirect(url, status=303)


@store_page
@require_GET
def checkout_done(request: HttpRequest) -> HttpResponse:
    account = _account_or_sign_in(request)
    if isinstance(account, HttpResponse):
        return account
    return _render(request, "done.html", _context(request, account))


@store_page
@require_GET
def download(request: HttpRequest, license_id: str) -> HttpResponse:
    account = _account_or_sign_in(request)
    if isinstance(account, HttpResponse):
        return account
    row = IssuedLicence.objects.filter(license_id=license_id, account=account).first()
    if row is None:  # another buyer's licence is no different from none
        return _render(request, "message.html", {"message": "There is no such licence in "
                                                 "your account."}, 404)
    response = HttpResponse(row.raw, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{row.filename}"'
    return response


@store_page
@require_POST
def cancel_subscription(request: HttpRequest, subscription_id: str) -> HttpResponse:
    account = _account_or_sign_in(request)
    if isinstance(account, HttpResponse):
        return account
    try:
        checkout.stop_renewal(account, subscription_id)
    except PotluckError as exc:
        return _error(request, exc, account)
    except (StripeUnavailable, StripeRejected, StripeNotConfigured) as exc:
        return _stripe_error(request, exc, account)
    return HttpResponseRedirect("/store/account?cancelled=1")


@store_page
@require_POST
def change_subscription(request: HttpRequest, subscription_id: str) -> HttpResponse:
    account = _account_or_sign_in(request)
    if isinstance(account, HttpResponse):
        return account
    try:
        checkout.change(account, subscription_id, request.POST.get("price"))
    except PotluckError as exc:
        return _error(request, exc, account)
    except (StripeUnavailable, StripeRejected, StripeNotConfigured) as exc:
        return _stripe_error(request, exc, account)
    return HttpResponseRedirect("/store/account?changed=1")


def routes() -> list[Any]:
    """Mounted at the site's root (``extensions.site_routes``)."""
    return [
        re_path(r"^store/?$", index, name="store"),
        path("store/sign-in", request_sign_in, name="store-sign-in"),
        path("store/sign-in/<str:token>", confirm_sign_in, name="store-sign-in-confirm"),
        path("store/sign-out", sign_out, name="store-sign-out"),
        path("store/account", account_page, name="store-account"),
        path("store/trial", start_trial, name="store-trial"),
        path("store/checkout", start_checkout, name="store-checkout"),
        path("store/checkout/done", checkout_done, name="store-checkout-done"),
        path("store/licences/<str:license_id>", download, name="store-licence"),
        path("store/subscriptions/<str:subscription_id>/cancel", cancel_subscription,
             name="store-subscription-cancel"),
        path("store/subscriptions/<str:subscription_id>/change", change_subscription,
             name="store-subscription-change"),
    ]
