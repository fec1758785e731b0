# SPDX-License-Identifier: Apache-2.0
"""Read queries of the Batch API, always scoped to an organization (writes: ``services``)."""

from __future__ import annotations

from django.db.models import QuerySet

from potluck.accounts.models import Organization
from potluck.batches.models import Batch


def list_batches(organization: Organization) -> QuerySet:
    return Batch.objects.for_org(organization)


def get_batch(organization: Organization, batch_id: str) -> Batch:
    return Batch.objects.get_in_org(organization, batch_id,
                                    not_found=f"No batch found with id '{batch_id}'.",
                                    field="batch_id")
