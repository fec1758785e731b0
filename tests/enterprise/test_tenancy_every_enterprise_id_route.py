# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Every enterprise /api route that takes an id (billing, credits, compliance, audit,
store, sso, licensing), enumerated from the URL configuration and filtered to the
enterprise modules (never listed by hand: a new route is covered the day it is added),
with every licensed feature on: another organization's object answers 404 to its
members' signed-in owner and to a key holding every scope (never 403, never 200, never
500), and the object is unchanged afterwards.

A route needs an entry in OBJECTS (how to make another organization's object for it),
OPERATOR_ONLY (a superuser's act: non-staff get 403, whatever the id) or
NOT_TENANT_OBJECTS (why its id names no tenant's object); a route in none of them fails
the test, naming itself. The community routes have their own test
(tests/community/api/test_tenancy_every_id_route.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from id_routes import id_routes, methods
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

NOWHERE = "00000000-0000-0000-0000-000000000000"

# Routes whose id names no organization's object, and why.
NOT_TENANT_OBJECTS = {
    "api/sso/{org_slug}/oidc/start": "a browser's sign-in, public: the slug picks the IdP",
    "api/sso/{org_slug}/oidc/callback": "the IdP's redirect back, checked by its state",
    "api/sso/{org_slug}/saml/metadata": "the SP metadata an IdP admin downloads, public",
    "api/sso/{org_slug}/saml/start": "a browser's sign-in, public: the slug picks the IdP",
    "api/sso/{org_slug}/saml/acs": "the IdP's signed assertion, checked by its signature",
    "api/credits/link/{forge}/start": "{forge} is github or gitlab, no object",
    "api/credits/link/{forge}/callback": "{forge} is github or gitlab, no object",
    "api/credits/webhooks/{forge}/{repository_id}": "a forge's delivery, verified by the "
    "repository's secret; repositories are the installation's, not an organization's",
}

# A superuser's (an operator's) routes: a member or a key who is not one gets 403,
# whatever the id (so it learns nothing of the object), and nothing changes.
OPERATOR_ONLY = ("api/credits/orgs/{slug}/credits",)

# Routes a signed-in person may use, not a key (a key acts for an organization): a key
# gets the same 403 whatever the id.
PERSON_ONLY = ("api/credits/approvals/{grant_id}", "api/credits/grants/{grant_id}/revert")

# The id names a profile within the caller's own organization: a PUT creates or replaces
# the caller's own profile of that name (200), never the other organization's.
OWN_NAMESPACE = ("api/compliance/profiles/{key}",)


def _row(obj: Any) -> Callable[[], Any]:
    model = type(obj)
    return lambda: model.objects.filter(pk=obj.pk).values().first()


def _budget(org):
    from potluck_enterprise.billing import budgets

    budget, _ = budgets.save_budget(org, {"period": "month", "hard_limit": "5.00"})
    return budget.pk, _row(budget)


def _invoice(org):
    from potluck_enterprise.billing.models import Invoice

    invoice = Invoice.objects.create(stripe_id=f"in_{uuid.uuid4().hex[:12]}", organization=org,
                                     status="paid", currency="USD", amount_paid=12_00,
                                     last_event_created=datetime.now(UTC))
    return invoice.stripe_id, _row(invoice)


def _domain(org):
    from potluck_enterprise.sso import domains

    domain = domains.add_domain(org, f"{uuid.uuid4().hex[:8]}.example.com")
    return domain.pk, _row(domain)


def _mapping(org):
    from potluck_enterprise.sso import services

    mapping = services.add_mapping(org, f"group-{uuid.uuid4().hex[:6]}", "member",
                                   granted_by_owner=True)
    return mapping.pk, _row(mapping)


def _profile(org):
    from potluck_enterprise.compliance import profiles, services

    key = f"theirs-{uuid.uuid4().hex[:6]}"
    profile = services.save_profile(org, key, profiles.builtin_spec("finance"))
    return key, _row(profile)


def _variant(org):
    from potluck.registry.models import RegisteredModel, Source
    from potluck_enterprise.compliance import services
    from potluck_enterprise.compliance.models import Variant, VariantState

    name = f"theirs-{uuid.uuid4().hex[:8]}"
    base = RegisteredModel.objects.create(name=name, organization=org,
                                          source=Source.HUGGINGFACE, repo_id=f"x/{name}")
    variant = Variant.objects.create(
        organization=org, name=f"{name}:finance", profile=services.ensure_profile(org, "finance"),
        base=base, model=base, candidate_name=f"{name}:finance@candidate-test",
        state=VariantState.PUBLISHED)
    return variant.pk, _row(variant)


def _grant(org):
    """A grant in a repository maintained by someone else (grants belong to repositories
    and contributors; the callers maintain none)."""
    from potluck_enterprise.credits import repositories, services

    repo, _ = repositories.create("github", f"acme/{uuid.uuid4().hex[:8]}",
                                  api_url="http://127.0.0.1:9", api_token="t",
                                  base_credits=1000, hold_days=30, maintainers=["maint"])
    grant = services.grant_manually(repo, number=7, author_id="4242", author_login="alice",
                                    by="maint", title="a fix")
    return grant.pk, _row(grant)


def _org_credits(org):
    from potluck_enterprise.credits.models import LedgerTransaction

    return org.slug, lambda: sorted(LedgerTransaction.objects.values_list("pk", flat=True))


# Route (with {param} placeholders) -> (the other organization's object's id, a snapshot).
OBJECTS: dict[str, Callable[[Any], tuple[Any, Callable[[], Any]]]] = {
    "api/billing/budgets/{budget_id}": _budget,
    "api/billing/invoices/{invoice_id}": _invoice,
    "api/sso/domains/{pk}": _domain,
    "api/sso/domains/{pk}/verify": _domain,
    "api/sso/role-mappings/{pk}": _mapping,
    "api/compliance/profiles/{key}": _profile,
    "api/compliance/variants/{variant_id}": _variant,
    "api/credits/approvals/{grant_id}": _grant,
    "api/credits/grants/{grant_id}/revert": _grant,
    "api/credits/orgs/{slug}/credits": _org_credits,
}

# What each method sends: a change that would show if it reached the object.
BODIES: dict[str, dict[str, Any]] = {
    "api/billing/budgets/{budget_id}": {"hard_limit": "1.00"},
    "api/sso/domains/{pk}": {"enforce_sso": True},
    "api/sso/domains/{pk}/verify": {"method": "operator"},  # by fiat: a superuser's
    "api/sso/role-mappings/{pk}": {"role": "admin"},
    "api/compliance/profiles/{key}": {"spec": "finance"},  # the built-in's spec
    "api/credits/approvals/{grant_id}": {"decision": "reject"},
    "api/credits/orgs/{slug}/credits": {"credits": 1000, "reference": "tenancy"},
}


def test_another_orgs_objects_answer_404_on_every_enterprise_id_route(
        org, other_org, key_for, user_client, licensed):
    licensed(features=["sso", "billing", "credits", "compliance"], seats=50)
    by_key = APIClient()
    by_key.credentials(HTTP_AUTHORIZATION="Bearer " + key_for(
        org, ["read", "write", "admin", "inference"]))
    by_person = user_client(org, "owner")
    rightful = user_client(other_org, "owner")  # the control: the object is reachable
    checked, unknown, seen = [], [], set()
    for route, pattern in id_routes(enterprise=True):
        seen.add(route)
        if route in NOT_TENANT_OBJECTS:
            continue
        make = OBJECTS.get(route)
        if make is None:
            unknown.append(route)
            continue
        object_id, snapshot = make(other_org)
        before = snapshot()
        assert before is not None
        path = "/" + re.sub(r"\{\w+\}", str(object_id), route)
        nowhere = "/" + re.sub(r"\{\w+\}", NOWHERE, route)
        malformed = "/" + re.sub(r"\{\w+\}", "not-an-id", route)
        body = dict(BODIES.get(route, {}))
        if body.get("spec") == "finance":
            from potluck_enterprise.compliance import profiles

            body["spec"] = profiles.builtin_spec("finance")
        if "get" in methods(pattern):
            assert rightful.get(path).status_code == 200, path
        for method in methods(pattern):
            for caller, client in (("person", by_person), ("key", by_key)):
                response = getattr(client, method)(path, body, format="json")
                expected = 404
                if route in OPERATOR_ONLY or (caller == "key" and route in PERSON_ONLY):
                    expected = 403
                    assert getattr(client, method)(nowhere, body, format="json"
                                                   ).status_code == 403
                elif route in OWN_NAMESPACE and method == "put":
                    expected = 200  # the caller's own profile of that name
                assert response.status_code == expected, (
                    caller, method.upper(), path, response.status_code, response.content[:300])
                assert snapshot() == before, (caller, method.upper(), path)
                if expected == 200:  # the caller's own, in the caller's organization
                    from potluck_enterprise.compliance.models import ComplianceProfile

                    assert ComplianceProfile.objects.filter(organization=org,
                                                            key=object_id).exists()
                # A malformed id is a client's error, never a server's (a profile's
                # name is any name: PUT makes the caller's own).
                if not (route in OWN_NAMESPACE and method == "put"):
                    odd = getattr(client, method)(malformed, body, format="json").status_code
                    assert 400 <= odd < 500, (caller, method.upper(), malformed, odd)
            checked.append(f"{method.upper()} {route}")
    assert unknown == [], ("enterprise routes with an id but no entry in OBJECTS, "
                           f"OPERATOR_ONLY or NOT_TENANT_OBJECTS: {unknown}")
    stale = (set(OBJECTS) | set(NOT_TENANT_OBJECTS)) - seen
    assert stale == set(), f"entries for routes that no longer exist: {stale}"
    assert len(checked) >= 15, checked
    print(f"tenancy: {len(checked)} enterprise route/method pairs checked")
