# SPDX-License-Identifier: Apache-2.0
"""The Grafana dashboard (deploy/helm/potluck/dashboards/potluck.json) parses, and every
metric its queries name is one that Potluck exports."""

from __future__ import annotations

import json
import re

import pytest
from deploy_files import CHART, ROOT

DASHBOARD = CHART / "dashboards" / "potluck.json"
# What the dashboard must show: the gateway's metrics, replicas and usage-consumer lag.
REQUIRED_METRICS = {"potluck_gateway_requests_total", "potluck_gateway_request_seconds",
                    "potluck_gateway_overhead_seconds", "potluck_gateway_tokens_total",
                    "potluck_replicas", "potluck_usage_consumer_lag_records",
                    "potluck_usage_consumer_lag_seconds"}

_DECLARED = re.compile(r"""\b(Counter|Gauge|Histogram|Summary)\(\s*["']([a-zA-Z_:][\w:]*)["']""")
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                 "and", "or", "unless", "offset", "le", "inf", "nan"}
_SERIES_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_metrics() -> dict[str, str]:
    """Metric name → kind, for every prometheus_client metric declared in Potluck's code."""
    found = {}
    for package in (ROOT / "community", ROOT / "enterprise"):
        for path in package.rglob("*.py"):
            for kind, name in _DECLARED.findall(path.read_text()):
                found[name] = kind
    return found


def metrics_in(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are neither functions, nor
    keywords, nor inside label matchers, grouping clauses, ranges or strings."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])[a-zA-Z_:][\w:]*", expr):
        name = match.group(0)
        if expr[match.end():].lstrip().startswith("(") or name.lower() in _PROMQL_WORDS:
            continue
        names.add(name)
    return names


def base_name(series: str, kinds: dict[str, str]) -> str:
    """A histogram's _bucket/_sum/_count series belong to the histogram's name."""
    for suffix in _SERIES_SUFFIXES:
        base = series.removesuffix(suffix)
        if base != series and kinds.get(base) in ("Histogram", "Summary"):
            return base
    return series


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [p for p in found if p["type"] != "row"]


def test_the_parser_finds_metrics_and_skips_functions_labels_and_keywords():
    expr = ('histogram_quantile(0.95, sum by (le, model) (rate(foo_seconds_bucket'
            '{model=~"$model",status="5.."}[$__rate_interval]))) / max without (x) (bar) '
            'and on (a) baz offset 5m')
    assert metrics_in(expr) == {"foo_seconds_bucket", "bar", "baz"}


def test_every_query_names_a_metric_potluck_exports(dashboard):
    kinds = exported_metrics()
    known = set(kinds)
    unknown = {}
    for panel in panels(dashboard):
        for target in panel["targets"]:
            names = {base_name(n, kinds) for n in metrics_in(target["expr"])}
            assert names, f"{panel['title']}: no metric in {target['expr']}"
            if names - known:
                unknown[panel["title"]] = sorted(names - known)
    assert unknown == {}


def test_the_dashboard_shows_requests_latency_overhead_tokens_replicas_and_lag(dashboard):
    kinds = exported_metrics()
    shown = {base_name(n, kinds) for panel in panels(dashboard)
             for target in panel["targets"] for n in metrics_in(target["expr"])}
    assert shown >= REQUIRED_METRICS
    # The code still declares what the dashboard was drawn for.
    assert set(kinds) >= REQUIRED_METRICS


def test_panels_are_well_formed_for_grafana(dashboard):
    assert dashboard["uid"] == "potluck" and dashboard["title"] == "Potluck"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "model"} <= variables
    for panel in panels(dashboard):
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
