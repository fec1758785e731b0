# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Repositories whose merged patches earn credits: their secrets (encrypted at rest with
``potluck_enterprise.crypto``, shown once when made) and their rules."""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from potluck.errors import Conflict, InvalidInput
from potluck_enterprise import crypto
from potluck_enterprise.credits.models import Forge, Repository

RULE_FIELDS = ("base_credits", "label_weights", "monthly_cap", "hold_days",
               "require_approval", "first_grant_needs_approval", "maintainers", "bots")


def _rules(values: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name in ("base_credits", "monthly_cap", "hold_days"):
        if name in values and values[name] is not None:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput("a whole number of at least 0", field=name)
            clean[name] = value
    for name in ("require_approval", "first_grant_needs_approval"):
        if name in values and values[name] is not None:
            clean[name] = bool(values[name])
    if values.get("label_weights") is not None:
        weights = values["label_weights"]
        if not isinstance(weights, dict):
            raise InvalidInput("label -> weight", field="label_weights")
        for label, weight in weights.items():
            try:
                number = Decimal(str(weight))
            except InvalidOperation:
                raise InvalidInput(f"{label}: {weight!r} is not a number",
                                   field="label_weights") from None
            if isinstance(weight, float) or not number.is_finite() or number < 0 or \
                    number > 100 or number != number.quantize(Decimal("0.01")):
                raise InvalidInput(f"{label}: weights are strings from 0 to 100 with at "
                                   "most 2 decimals", field="label_weights")
        clean["label_weights"] = {str(k): str(v) for k, v in weights.items()}
    for name in ("maintainers", "bots"):
        if values.get(name) is not None:
            if not isinstance(values[name], list):
                raise InvalidInput("a list of forge logins", field=name)
            clean[name] = [str(x).strip() for x in values[name] if str(x).strip()]
    return clean


def create(forge: str, full_name: str, *, secret: str | None = None, api_url: str = "",
           api_token: str = "", project_id: str = "", **rules: Any) -> tuple[Repository, str]:
    """A new repository; returns it and its webhook secret (made when not given)."""
    if forge not in Forge.values:
        raise InvalidInput(f"forge must be one of {', '.join(Forge.values)}", field="forge")
    full_name = full_name.strip().strip("/")
    if "/" not in full_name:
        raise InvalidInput("owner/name (GitLab: the project's full path)", field="full_name")
    if Repository.objects.filter(forge=forge, full_name__iexact=full_name).exists():
        raise Conflict(f"{forge}:{full_name} is already configured", field="full_name")
    secret = secret or secrets.token_urlsafe(32)
    repository = Repository.objects.create(
        forge=forge, full_name=full_name, project_id=project_id,
        secret_encrypted=crypto.encrypt(secret), api_url=api_url.strip(),
        api_token_encrypted=crypto.encrypt(api_token) if api_token else "", **_rules(rules))
    return repository, secret


def update(repository: Repository, **rules: Any) -> Repository:
    for name, value in _rules(rules).items():
        setattr(repository, name, value)
    repository.save()
    return repository


def rotate_secret(repository: Repository) -> str:
    """A new webhook secret (the old one stops verifying at once); shown once."""
    secret = secrets.token_urlsafe(32)
    repository.secret_encrypted = crypto.encrypt(secret)
    repository.save(update_fields=["secret_encrypted"])
    return secret


def as_json(repository: Repository) -> dict[str, Any]:
    return {"id": str(repository.id), "forge": repository.forge,
            "full_name": repository.full_name, "active": repository.active,
            "webhook_path": f"/api/credits/webhooks/{repository.forge}/{repository.id}",
            "api_url": repository.api_url, "has_api_token": bool(repository.api_token_encrypted),
            **{name: getattr(repository, name) for name in RULE_FIELDS}}
