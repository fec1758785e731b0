# SPDX-License-Identifier: Apache-2.0
"""GET /api/usage: the caller's organization's usage, grouped, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import renderers, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from potluck.accounts.api_base import OrgScopedViewSet
from potluck.usage import selectors
from potluck.usage.models import UsageRecord

DEFAULT_DAYS = 7
MAX_DAYS = 366


class UsageQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First day (UTC), ISO date.")
    end = serializers.DateField(required=False, help_text="Last day (UTC), inclusive.")
    group_by = serializers.CharField(required=False, default="day",
                                     help_text="Comma-separated: day, hour, model, key.")
    since = serializers.DateTimeField(
        required=False, help_text="Only records at or after this time (e.g. the last hour); "
        "the report starts on its day.")
    model = serializers.CharField(required=False, max_length=200)
    key = serializers.UUIDField(required=False, help_text="Only this API key's usage.")

    def validate_group_by(self, value: str) -> list[str]:
        groups = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        unknown = [g for g in groups if g not in selectors.GROUPS]
        if unknown or not groups:
            raise serializers.ValidationError(
                f"group by any of {', '.join(selectors.GROUPS)} (comma-separated)")
        return groups

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("end") or timezone.now().date()
        since = attrs.get("since")
        if since is not None and "start" not in attrs:
            attrs["start"] = since.astimezone(UTC).date()
        start = attrs.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise serializers.ValidationError({"start": ["start is after end"]})
        if (end - start).days >= MAX_DAYS:
            raise serializers.ValidationError(
                {"start": [f"a report spans at most {MAX_DAYS} days"]})
        return {**attrs, "start": start, "end": end}

    def to_query(self) -> selectors.UsageQuery:
        data = self.validated_data
        return selectors.UsageQuery(start=data["start"], end=data["end"],
                                    group_by=data["group_by"], model=data.get("model"),
                                    api_key_id=data.get("key"), since=data.get("since"))


class UsageRowSerializer(serializers.Serializer):
    """For the schema: a row holds only the groups asked for."""

    day = serializers.DateField(required=False)
    model = serializers.CharField(required=False)
    key = serializers.UUIDField(required=False, allow_null=True)
    key_name = serializers.CharField(required=False, allow_null=True)
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Requests answered with status >= 400.")
    latency_p50_ms = serializers.FloatField()
    latency_p95_ms = serializers.FloatField()
    latency_p99_ms = serializers.FloatField()


class UsageReportSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.ListField(child=serializers.CharField())
    rows = UsageRowSerializer(many=True)


class UsageCsvRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        groups = list(data["group_by"])
        if "key" in groups:
            groups.insert(groups.index("key") + 1, "key_name")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([*groups, *selectors.METRICS])
        for row in data["rows"]:
            writer.writerow([_cell(row.get(name)) for name in (*groups, *selectors.METRICS)])
        return out.getvalue().encode(self.charset)


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell that starts like a formula; names are caller-chosen text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


class UsageViewSet(OrgScopedViewSet):
    """Usage of the caller's organization per day, model and/or key (``?format=csv``: CSV)."""

    model = UsageRecord
    capabilities = {"report": "read"}
    renderer_classes = [renderers.JSONRenderer, UsageCsvRenderer]
    pagination_class = None

    @extend_schema(operation_id="usage_report", parameters=[UsageQuerySerializer],
                   responses={200: UsageReportSerializer, (200, "text/csv"): str})
    def report(self, request: Request) -> Response:
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = query.to_query()
        body = {"start": report.start.isoformat(), "end": report.end.isoformat(),
                "group_by": list(report.group_by),
                "rows": selectors.usage_report(self.tenant.organization, report)}
        response = Response(body)
        if request.accepted_renderer.format == "csv":
            name = f"usage-{report.start.isoformat()}-{report.end.isoformat()}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any,
                          **kwargs: Any) -> Any:
        # Errors are JSON even when CSV was asked for: they have no rows to tabulate.
        if response.status_code >= 400 and getattr(request, "accepted_renderer", None) and \
                request.accepted_renderer.format == "csv":
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)
