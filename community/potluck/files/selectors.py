# SPDX-License-Identifier: Apache-2.0
"""Read queries of the Files app, always scoped to an organization (writes: ``services``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from potluck.errors import InvalidInput
from potluck.files.models import Purpose, StoredFile

if TYPE_CHECKING:
    from potluck.accounts.models import Organization


def get_file(organization: Organization, file_id: str) -> StoredFile:
    """The organization's file (not expired); NotFound (404) otherwise."""
    return _visible().get_in_org(organization, file_id,
                                 not_found=f"No such File object: {file_id}", field="file_id")


def list_files(organization: Organization, *, purpose: str | None = None) -> QuerySet:
    files = _visible().for_org(organization)
    if purpose:
        if purpose not in Purpose.values:
            allowed = ", ".join(f'"{p}"' for p in Purpose.values)
            raise InvalidInput(f"purpose must be one of {allowed}, got {json.dumps(purpose)}",
                               field="purpose")
        files = files.filter(purpose=purpose)
    return files.order_by("-created_at", "-pk")


def org_usage_bytes(organization: Organization) -> int:
    """Bytes the org's files hold in storage (expired ones until they are swept)."""
    total = StoredFile.objects.for_org(organization).aggregate(total=Sum("bytes"))["total"]
    return int(total or 0)


def _visible() -> QuerySet:
    """Files not past their ``expires_at`` (expired ones wait for the sweep)."""
    return StoredFile.objects.filter(Q(expires_at__isnull=True)
                                     | Q(expires_at__gt=timezone.now()))

