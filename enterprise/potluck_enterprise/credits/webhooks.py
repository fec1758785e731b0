# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Forge webhooks: verified before anything is read, stored once, worked on by Celery.

Each repository has its own URL (``/api/credits/webhooks/<forge>/<repository id>``) and
secret, so the secret is known before the body is read. ``receive``:

1. an unknown (or inactive) repository, a missing or wrong signature (GitHub: HMAC-SHA256
   of the raw body; GitLab: the token, in constant time), or a missing delivery id is
   refused (``WebhookRefused``) and logged, with no write;
2. a verified delivery is stored under (forge, delivery id); a replay finds it and does
   nothing more (answered 200, ``duplicate``);
3. events other than merges are acknowledged and stored only;
4. a merge queues ``credits.process_delivery`` once the row commits, and the view
   answers at once (the rules may call the forge's API: that is Celery's work).

A delivery whose task died is picked up again by the periodic reconcile of deliveries
(``process_pending``, every minute), and a missed delivery by the forge reconcile.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from potluck.errors import PotluckError
from potluck_enterprise import crypto
from potluck_enterprise.credits import forges, grants
from potluck_enterprise.credits.models import Forge, Repository, WebhookDelivery

log = logging.getLogger(__name__)


class WebhookRefused(PotluckError):
    """A delivery that is not verified for a known repository (401/404/400)."""

    status = 401


@dataclass(frozen=True)
class Received:
    delivery: WebhookDelivery
    first: bool
    queued: bool


def _refuse(status: int, message: str, forge: str, repository_id: str) -> WebhookRefused:
    log.warning("credits: %s webhook for repository %s refused: %s", forge, repository_id,
                message)
    error = WebhookRefused(message)
    error.status = status
    return error


def _headers(headers: Any, name: str) -> str | None:
    value = headers.get(name)
    return str(value) if value else None


def receive(forge: str, repository_id: str, body: bytes, headers: Any) -> Received:
    """Verify, store once and queue one delivery (module docstring). Raises
    ``WebhookRefused``."""
    repository = None
    if forge in Forge.values:
        try:
            repository = Repository.objects.filter(pk=repository_id, forge=forge,
                                                   active=True).first()
        except Exception:  # a malformed id is simply unknown
            repository = None
    if repository is None:
        raise _refuse(404, "unknown repository", forge, repository_id)
    secret = crypto.decrypt(repository.secret_encrypted)
    if forge == Forge.GITHUB:
        if not forges.verify_github(secret, body, _headers(headers, "X-Hub-Signature-256")):
            raise _refuse(401, "bad signature", forge, repository_id)
        delivery_id = _headers(headers, "X-GitHub-Delivery")
        event = _headers(headers, "X-GitHub-Event") or ""
    else:
        if not forges.verify_gitlab(secret, _headers(headers, "X-Gitlab-Token")):
            raise _refuse(401, "bad token", forge, repository_id)
        delivery_id = _headers(headers, "X-Gitlab-Event-UUID")
        event = _headers(headers, "X-Gitlab-Event") or ""
    if not delivery_id:
        raise _refuse(400, "no delivery id", forge, repository_id)
    try:
        payload = json.loads(body)
    except ValueError:
        raise _refuse(400, "the body is not JSON", forge, repository_id) from None
    if not isinstance(payload, dict):
        raise _refuse(400, "the body is not a JSON object", forge, repository_id)
    name = _repository_name(forge, payload)
    if name is not None and name.lower() != repository.full_name.lower():
        raise _refuse(400, f"the delivery is for {name}, not this repository", forge,
                      repository_id)
    merge = _is_merge(forge, event, payload)
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                forge=forge, delivery_id=delivery_id[:100], repository=repository,
                event=event[:60], payload=payload,
                outcome="" if merge else "not a merge",
                processed_at=None if merge else timezone.now())
            if merge:
                transaction.on_commit(lambda: _queue(delivery.pk))
    except IntegrityError:
        found = WebhookDelivery.objects.get(forge=forge, delivery_id=delivery_id[:100])
        log.info("credits: %s delivery %s replayed; ignored", forge, delivery_id)
        return Received(found, first=False, queued=False)
    return Received(delivery, first=True, queued=merge)


def _repository_name(forge: str, payload: dict[str, Any]) -> str | None:
    if forge == Forge.GITHUB:
        return (payload.get("repository") or {}).get("full_name")
    return (payload.get("project") or {}).get("path_with_namespace")


def _is_merge(forge: str, event: str, payload: dict[str, Any]) -> bool:
    if forge == Forge.GITHUB:
        pr = payload.get("pull_request") or {}
        return event == "pull_request" and payload.get("action") == "closed" and \
            bool(pr.get("merged"))
    return payload.get("object_kind") == "merge_request" and \
        (payload.get("object_attributes") or {}).get("action") == "merge"


def _queue(delivery_id: int) -> None:
    from potluck_enterprise.credits.tasks import process_delivery

    try:
        process_delivery.delay(delivery_id)
    except Exception as exc:  # the broker is away: the minute sweep picks it up
        log.warning("credits: could not queue delivery %s (%s)", delivery_id,
                    exc.__class__.__name__)


def process(delivery_id: int) -> str:
    """Apply the rules to a stored merge delivery (once); returns the outcome. Raises
    ``forges.ForgeUnavailable`` when approvals could not be read (retried later)."""
    delivery = WebhookDelivery.objects.select_related("repository").get(pk=delivery_id)
    if delivery.processed_at is not None:
        return delivery.outcome
    repository = delivery.repository
    if delivery.forge == Forge.GITHUB:
        patch = forges.github_patch(delivery.payload.get("pull_request") or {},
                                    repository.full_name, repository.bots)
    else:
        patch = forges.gitlab_patch(delivery.payload, repository.full_name, repository.bots)
    if patch is None:
        outcome = "not a merge"
    else:
        grant = grants.consider(repository, patch, source="webhook")
        outcome = f"grant {grant.pk}: {grant.status}"
    WebhookDelivery.objects.filter(pk=delivery.pk, processed_at__isnull=True).update(
        processed_at=timezone.now(), outcome=outcome[:200])
    return outcome


def process_pending(limit: int = 100) -> int:
    """Process merge deliveries a dead task left (older than a minute)."""
    stale = timezone.now() - timedelta(minutes=1)
    done = 0
    for delivery_id in WebhookDelivery.objects.filter(
            processed_at__isnull=True, received_at__lt=stale).values_list("id", flat=True
                                                                          )[:limit]:
        try:
            process(delivery_id)
            done += 1
        except forges.ForgeUnavailable as exc:
            log.warning("credits: delivery %s waits for the forge (%s)", delivery_id, exc)
    return done


def reconcile(repository: Repository, days: int) -> list[int]:
    """Grant what merged in the last ``days`` days and no delivery brought (each patch at
    most once: the grant is unique per repository and number). Returns new grant ids."""
    made = []
    for patch in forges.recently_merged(repository, days):
        seen = grants.Grant.objects.filter(repository=repository, number=patch.number).exists()
        if not seen:
            made.append(grants.consider(repository, patch, source="reconcile").pk)
    return made
