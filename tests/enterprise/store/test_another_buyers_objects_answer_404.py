# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The store's pages that take an id (enumerated from the URL configuration, filtered to
the store's module, so a new one is covered the day it is added): another buyer's
licence or subscription answers 404 to a signed-in buyer, exactly as an id that does not
exist does, and nothing of it changes (here or at Stripe). A route needs an entry in
OBJECTS or NOT_BUYER_OBJECTS, else the test fails naming it. (The /api routes have their
own test: tests/enterprise/test_tenancy_every_enterprise_id_route.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from django.test import Client
from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver
from store_helpers import buy, price_of, sign_in

ROUTE_PARAM = re.compile(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>")
NOWHERE = "00000000-0000-0000-0000-000000000000"

NOT_BUYER_OBJECTS = {
    "store/sign-in/{token}": "the mailed link's token is the credential itself, not an "
    "object of an account",
}


def store_id_routes() -> Iterator[tuple[str, URLPattern]]:
    def walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern

    for raw, pattern in walk(get_resolver().url_patterns):
        if not pattern.callback.__module__.startswith("potluck_enterprise.store"):
            continue
        route = ROUTE_PARAM.sub(lambda m: "{" + (m.group(1) or m.group(2)) + "}", raw)
        route = route.replace("^", "").replace("$", "").replace("/?", "/").rstrip("/")
        if "{" in route and not route.startswith("api/"):
            yield route, pattern


def test_another_buyers_licences_and_subscriptions_answer_404(store, client, mailoutbox):
    from potluck_enterprise.store.models import IssuedLicence, StoreSubscription

    sign_in(client, mailoutbox, "buyer@acme.test")
    theirs = buy(client, store.fake, plan="team", seats=10)
    sub = StoreSubscription.objects.get(stripe_subscription_id=theirs["id"])
    licence = IssuedLicence.objects.get(subscription=sub)
    objects = {"store/licences/{license_id}": licence.license_id,
               "store/subscriptions/{subscription_id}/cancel": sub.pk,
               "store/subscriptions/{subscription_id}/change": sub.pk}
    bodies = {"store/subscriptions/{subscription_id}/change":
              {"price": price_of("team", 50).pk}}

    def snapshot() -> str:
        return json.dumps([StoreSubscription.objects.filter(pk=sub.pk).values().first(),
                           IssuedLicence.objects.filter(subscription=sub).count(),
                           store.fake.subscriptions[theirs["id"]]], default=str,
                          sort_keys=True)

    before = snapshot()
    other = Client()
    sign_in(other, mailoutbox, "someone@globex.test")
    checked, unknown = [], []
    for route, _pattern in store_id_routes():
        if route in NOT_BUYER_OBJECTS:
            continue
        if route not in objects:
            unknown.append(route)
            continue
        path = "/" + re.sub(r"\{\w+\}", str(objects[route]), route)
        nowhere = "/" + re.sub(r"\{\w+\}", NOWHERE, route)
        body = bodies.get(route, {})
        answered = {}
        for method in ("get", "post"):
            answer = getattr(other, method)(path, body)
            answered[method] = answer.status_code
            assert answer.status_code == getattr(other, method)(nowhere, body).status_code, (
                method, path, answer.status_code)
            assert answer.status_code in (404, 405), (method, path, answer.status_code)
            store.fake.flush()
            assert snapshot() == before, (method, path)
        assert 404 in answered.values(), (path, answered)
        # The control: the buyer's own id is found.
        own = client.get(path) if answered["get"] == 404 else None
        assert own is None or own.status_code == 200, path
        checked.append(route)
    assert unknown == [], f"store pages with an id and no entry: {unknown}"
    assert sorted(checked) == sorted(objects), checked
