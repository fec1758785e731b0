# SPDX-License-Identifier: Apache-2.0
"""Per-organization capacity quotas: replicas, GPUs and concurrent fine-tuning jobs.

Each quota is the organization's own value (``Organization.max_replicas``, ``max_gpus``,
``max_concurrent_fine_tunes``, set by the operator with ``potluck orgs quota``) or the
server default (``POTLUCK_ORG_MAX_REPLICAS``, ``POTLUCK_ORG_MAX_GPUS``,
``POTLUCK_ORG_MAX_FINE_TUNES``). A quota counts what the organization asks for as a
whole, whatever its models are named, so registering one folder under many names does
not multiply it. Checks run under ``lock``, a row lock on the organization, held until
the caller's transaction ends: two concurrent requests cannot both pass a check that only
one of them fits. The operator (CLI) is not bound by quotas.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from potluck.accounts.models import Organization
from potluck.errors import ConcurrencyQuotaExceeded, QuotaExceeded

REPLICAS, GPUS, FINE_TUNES = "replicas", "gpus", "concurrent_fine_tunes"
_FIELDS = {REPLICAS: "max_replicas", GPUS: "max_gpus", FINE_TUNES: "max_concurrent_fine_tunes"}
_DEFAULTS = {REPLICAS: "ORG_MAX_REPLICAS", GPUS: "ORG_MAX_GPUS",
             FINE_TUNES: "ORG_MAX_CONCURRENT_FINE_TUNES"}
_NOUNS = {REPLICAS: "replicas", GPUS: "GPUs", FINE_TUNES: "fine-tuning jobs at once"}


@dataclass(frozen=True)
class Quota:
    name: str
    limit: int
    default: bool  # the server default, not the organization's own value


def quota(org: Organization, name: str) -> Quota:
    """The organization's quota ``name`` (``REPLICAS``, ``GPUS`` or ``FINE_TUNES``)."""
    own = getattr(org, _FIELDS[name])
    if own is not None:
        return Quota(name, own, False)
    return Quota(name, int(getattr(settings, _DEFAULTS[name])), True)


def all_quotas(org: Organization) -> dict[str, int]:
    return {name: quota(org, name).limit for name in _FIELDS}


def lock(org: Organization) -> Organization:
    """Lock the organization's row until the transaction ends (quota checks serialize)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("quotas.lock needs a transaction")
    return Organization.objects.select_for_update().get(pk=org.pk)


def check(org: Organization, name: str, *, in_use: int, more: int, field: str) -> None:
    """Refuse ``more`` on top of ``in_use`` past the quota: ``QuotaExceeded`` (403), or
    ``ConcurrencyQuotaExceeded`` (429) for concurrent jobs, naming ``field``."""
    if more <= 0:
        return
    limit = quota(org, name).limit
    if in_use + more <= limit:
        return
    error = ConcurrencyQuotaExceeded if name == FINE_TUNES else QuotaExceeded
    raise error(f"this organization may use at most {limit} {_NOUNS[name]} and has "
                f"{in_use}; asking for {more} more is over its quota (the operator sets "
                "quotas with `potluck orgs quota`)", field=field)
