# SPDX-License-Identifier: Apache-2.0
"""GET /api/usage: an organization's own usage, grouped, with latency percentiles, or CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from potluck.accounts import services
from potluck.usage.models import UsageRecord
from potluck.usage.stream import new_request_id

pytestmark = pytest.mark.django_db

NOV_20 = datetime(2026, 11, 20, 10, tzinfo=UTC)
NOV_21 = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)
RANGE = {"start": "2026-11-20", "end": "2026-11-21"}


def record(org, *, at=NOV_20, model="llama", key=None, status=200, latency=10.0,
           prompt=10, completion=5) -> UsageRecord:
    return UsageRecord.objects.create(
        request_id=new_request_id(), organization=org, api_key_id=key.pk if key else None,
        model=model, endpoint="chat.completions", status=status, prompt_tokens=prompt,
        completion_tokens=completion, latency_ms=latency, created_at=at)


@pytest.fixture
def usage(org, other_org):
    key, _ = services.create_api_key(org, "ci-bot")
    for latency in (10.0, 20.0, 30.0, 40.0):
        record(org, latency=latency, key=key)
    record(org, model="qwen", status=429, latency=100.0)
    record(org, at=NOV_21, model="qwen", status=500, latency=7.0, prompt=1, completion=0)
    record(org, at=NOV_20 - timedelta(days=1), latency=1.0)  # before the range
    record(other_org, latency=5000.0, prompt=1000)
    record(other_org, model="globex-secret-model")
    return key


def test_by_day_counts_tokens_errors_and_latency_percentiles(org, client_for, usage):
    response = client_for(org, ["read"]).get("/api/usage", RANGE)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["start"], body["end"], body["group_by"]) == (
        "2026-11-20", "2026-11-21", ["day"])
    day_1, day_2 = body["rows"]
    assert day_1 == {"day": "2026-11-20", "requests": 5, "prompt_tokens": 50,
                     "completion_tokens": 25, "total_tokens": 75, "errors": 1,
                     "latency_p50_ms": 30.0, "latency_p95_ms": 88.0, "latency_p99_ms": 97.6}
    assert (day_2["day"], day_2["requests"], day_2["errors"], day_2["total_tokens"],
            day_2["latency_p99_ms"]) == ("2026-11-21", 1, 1, 1, 7.0)


def test_by_model_and_key_names_the_key(org, client_for, usage):
    response = client_for(org, ["read"]).get("/api/usage", {**RANGE, "group_by": "model,key"})

    rows = [(r["model"], r["key"], r["key_name"], r["requests"], r["latency_p50_ms"],
             r["latency_p95_ms"]) for r in response.json()["rows"]]
    assert rows == [("llama", str(usage.pk), "ci-bot", 4, 25.0, 38.5),
                    ("qwen", None, None, 2, 53.5, 95.35)]


def test_filters_by_model_and_key(org, client_for, usage):
    client = client_for(org, ["read"])
    by_model = client.get("/api/usage", {**RANGE, "model": "qwen", "group_by": "day,model"})
    assert [(r["day"], r["model"], r["requests"]) for r in by_model.json()["rows"]] == [
        ("2026-11-20", "qwen", 1), ("2026-11-21", "qwen", 1)]
    by_key = client.get("/api/usage", {**RANGE, "key": str(usage.pk), "group_by": "key"})
    assert [(r["key"], r["requests"]) for r in by_key.json()["rows"]] == [(str(usage.pk), 4)]


def test_the_default_range_is_the_last_seven_days(org, client_for):
    now = timezone.now()
    record(org, at=now)
    record(org, at=now - timedelta(days=6))
    record(org, at=now - timedelta(days=8))
    body = client_for(org, ["read"]).get("/api/usage").json()
    assert body["end"] == now.date().isoformat()
    assert body["start"] == (now - timedelta(days=6)).date().isoformat()
    assert sum(r["requests"] for r in body["rows"]) == 2


def test_csv_export(org, client_for, usage):
    record(org, model="=HYPERLINK(1)")
    response = client_for(org, ["read"]).get(
        "/api/usage", {**RANGE, "group_by": "model,key", "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        'attachment; filename="usage-2026-11-20-2026-11-21.csv"')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["model", "key", "key_name", "requests", "prompt_tokens",
                       "completion_tokens", "total_tokens", "errors", "latency_p50_ms",
                       "latency_p95_ms", "latency_p99_ms"]
    assert rows[1][0] == "'=HYPERLINK(1)"  # not a formula in a spreadsheet
    assert rows[2][:4] == ["llama", str(usage.pk), "ci-bot", "4"]
    assert rows[3][:4] == ["qwen", "", "", "2"]


@pytest.mark.parametrize("params,field", [
    ({"start": "yesterday"}, "start"),
    ({"end": "2026-13-01"}, "end"),
    ({"start": "2026-11-21", "end": "2026-11-20"}, "start"),
    ({"start": "2024-01-01", "end": "2026-11-20"}, "start"),
    ({"group_by": "day,org"}, "group_by"),
    ({"group_by": ","}, "group_by"),
    ({"key": "not-a-uuid"}, "key"),
    ({"key": "not-a-uuid", "format": "csv"}, "key"),  # errors stay JSON
])
def test_bad_parameters_answer_400_naming_the_field(org, client_for, params, field):
    response = client_for(org, ["read"]).get("/api/usage", params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert list(response.json()) == [field]


def test_an_org_sees_only_its_own_usage(org, other_org, client_for, usage):
    client = client_for(org, ["read"])
    # A client-supplied organization means nothing: the caller's key decides.
    body = client.get("/api/usage", {**RANGE, "group_by": "model",
                                     "organization": str(other_org.pk)}).json()
    assert {r["model"] for r in body["rows"]} == {"llama", "qwen"}
    assert sum(r["requests"] for r in body["rows"]) == 6
    theirs = client_for(other_org, ["read"]).get("/api/usage", {**RANGE, "group_by": "model"})
    assert {r["model"]: r["requests"] for r in theirs.json()["rows"]} == {
        "globex-secret-model": 1, "llama": 1}
    # Filtering on another org's key finds nothing rather than their usage.
    other_key, _ = services.create_api_key(other_org, "globex-key")
    record(other_org, key=other_key)
    assert client.get("/api/usage", {**RANGE, "key": str(other_key.pk)}).json()["rows"] == []


def test_reading_usage_needs_the_read_capability(org, other_org, client_for, user_client,
                                                  usage):
    assert client_for(org, ["inference"]).get("/api/usage").status_code == 403
    viewer = user_client(org, "viewer")
    assert viewer.get("/api/usage", RANGE).status_code == 200
    # A person in two organizations picks one by header, and sees that one only.
    from potluck.accounts.models import Membership

    Membership.objects.create(organization=other_org, user=viewer.user, role="viewer")
    body = viewer.get("/api/usage", {**RANGE, "group_by": "model"},
                      HTTP_X_POTLUCK_ORGANIZATION=other_org.slug).json()
    assert "globex-secret-model" in {r["model"] for r in body["rows"]}
    assert client_for(org).get("/api/usage", RANGE).status_code == 200
    from rest_framework.test import APIClient

    assert APIClient().get("/api/usage").status_code in (401, 403)


def test_the_last_hour_by_hour(org, client_for):
    now = timezone.now()
    record(org, at=now - timedelta(minutes=10), prompt=7, completion=3)
    record(org, at=now - timedelta(minutes=50), prompt=1, completion=1)
    record(org, at=now - timedelta(hours=3), prompt=100, completion=100)  # too old
    since = (now - timedelta(hours=1)).isoformat()
    body = client_for(org, ["read"]).get("/api/usage", {"since": since,
                                                        "group_by": "hour"}).json()
    assert body["start"] == (now - timedelta(hours=1)).date().isoformat()
    assert sum(r["requests"] for r in body["rows"]) == 2
    assert sum(r["total_tokens"] for r in body["rows"]) == 12
    hours = [datetime.fromisoformat(r["hour"]) for r in body["rows"]]
    assert hours == sorted(hours) and all(h.minute == 0 and h.tzinfo for h in hours)
