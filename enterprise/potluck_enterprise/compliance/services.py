# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""What compliance does: profiles (read, copy from a built-in, edit), variants (start a
build, follow its fine-tune, conclude its gate, publish), and the aliases that serve them.

Every edit of a profile and every state change of a variant is an administrative event
in the organization's audit chain.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from potluck import extensions
from potluck.accounts.models import Organization, User
from potluck.errors import Conflict, InvalidInput, NotFound
from potluck.files import services as files
from potluck.finetune import services as finetune
from potluck.finetune.models import FineTuningJob, JobStatus
from potluck.registry import services as registry
from potluck.registry.models import Kind
from potluck_enterprise.compliance import profiles
from potluck_enterprise.compliance.models import ComplianceProfile, Variant, VariantState

BUILTIN_DIR = profiles.BUILTIN_DIR


def _event(action: str, org: Organization, target: str, user: User | None = None,
           **details: Any) -> None:
    extensions.record_admin_event(action, organization_id=org.id,
                                  actor=f"user:{user.id}" if user else "operator",
                                  target=target, details=details)


# -- profiles ----------------------------------------------------------------------------
def list_profiles(org: Organization) -> list[dict[str, Any]]:
    """The organization's profiles, then the built-ins it has not copied yet."""
    own = list(ComplianceProfile.objects.for_org(org))
    out = [profile_view(p) for p in own]
    taken = {p.key for p in own}
    for key in profiles.builtin_keys():
        if key not in taken:
            spec = profiles.builtin_spec(key)
            out.append({"id": None, "key": key, "based_on": key, "builtin": True,
                        "version": 0, "spec": spec, "updated_at": None})
    return out


def profile_view(profile: ComplianceProfile) -> dict[str, Any]:
    return {"id": str(profile.id), "key": profile.key, "based_on": profile.based_on,
            "builtin": False, "version": profile.version, "spec": profile.spec,
            "updated_at": profile.updated_at.isoformat()}


def get_profile(org: Organization, key: str) -> ComplianceProfile:
    profile = ComplianceProfile.objects.for_org(org).filter(key=key).first()
    if profile is None:
        raise NotFound(f"no compliance profile {key!r} in {org.slug}", field="profile")
    return profile


@transaction.atomic
def ensure_profile(org: Organization, key: str, user: User | None = None
                   ) -> ComplianceProfile:
    """The organization's profile ``key``, copied from the built-in of that name on first
    use. Raises ``InvalidInput`` when there is neither."""
    profile = ComplianceProfile.objects.for_org(org).filter(key=key).first()
    if profile is not None:
        return profile
    spec = profiles.builtin_spec(key)
    profile = ComplianceProfile.objects.create(organization=org, key=key, based_on=key,
                                               spec=spec, updated_by=user)
    _event("compliance_profile.created", org, f"profile:{key}", user, based_on=key,
           version=1)
    return profile


@transaction.atomic
def save_profile(org: Organization, key: str, spec: Any, user: User | None = None,
                 based_on: str = "") -> ComplianceProfile:
    """Create or replace the spec of the organization's profile ``key`` (validated; the
    version goes up). Variants that use it apply the new version within seconds."""
    if not key or len(key) > 64 or not all(c.isalnum() or c in "-_" for c in key):
        raise InvalidInput("a profile key is up to 64 letters, digits, - and _", field="key")
    clean = profiles.validate_spec(spec)
    profile = (ComplianceProfile.objects.select_for_update().for_org(org)
               .filter(key=key).first())
    if profile is None:
        profile = ComplianceProfile.objects.create(organization=org, key=key, spec=clean,
                                                   based_on=based_on, updated_by=user)
        _event("compliance_profile.created", org, f"profile:{key}", user,
               based_on=based_on, version=1)
        return profile
    changed = sorted(k for k in set(clean) | set(profile.spec)
                     if clean.get(k) != profile.spec.get(k))
    if not changed:
        return profile
    profile.spec, profile.version = clean, profile.version + 1
    profile.updated_at, profile.updated_by = timezone.now(), user
    profile.save(update_fields=["spec", "version", "updated_at", "updated_by"])
    _event("compliance_profile.edited", org, f"profile:{key}", user,
           version=profile.version, changed=changed)
    return profile


# -- recipes -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """A built-in profile's fine-tuning recipe: its training set and hyperparameters."""

    profile: str
    training_file: Path
    hyperparameters: dict[str, Any]
    adapter: dict[str, Any]
    seed: int


def recipe(key: str) -> Recipe:
    path = BUILTIN_DIR / f"{key}.recipe.json"
    if not path.exists():
        raise InvalidInput(f"the profile {key!r} has no fine-tuning recipe; built-in recipes: "
                           f"{', '.join(recipe_keys())}", field="profile")
    spec = json.loads(path.read_text())
    return Recipe(key, BUILTIN_DIR / spec["training_file"], spec["hyperparameters"],
                  spec.get("adapter", {}), int(spec.get("seed", 0)))


def recipe_keys() -> list[str]:
    return sorted(p.name.removesuffix(".recipe.json") for p in BUILTIN_DIR.glob("*.recipe.json"))


def recipe_of(profile: ComplianceProfile) -> Recipe:
    return recipe(profile.based_on or profile.key)


# -- variants ----------------------------------------------------------------------------
@transaction.atomic
def start_build(org: Organization, profile_key: str, base_name: str, *,
                user: User | None = None, name: str = "", tune: bool = True) -> Variant:
    """Start building a variant: the fine-tune job of the profile's recipe on the base
    model (``tune=False``: the base itself, guardrails only), then the gate. Returns the
    variant (state ``fine_tuning``, or ``evaluating`` without a fine-tune)."""
    profile = ensure_profile(org, profile_key, user)
    try:
        base = registry.resolve(base_name, org)
    except NotFound:
        raise InvalidInput(f"no model named {base_name!r}", field="base") from None
    if base.kind != Kind.BASE:
        raise InvalidInput(f"{base_name} is an adapter; give its base model", field="base")
    name = name or f"{base.name}:{profile.key}"
    if Variant.objects.for_org(org).filter(name=name, state__in=(
            VariantState.FINE_TUNING, VariantState.EVALUATING)).exists():
        raise Conflict(f"{name} is already being built", field="name")
    variant = Variant(organization=org, name=name, profile=profile, base=base,
                      candidate_name=f"{name}@candidate-{secrets.token_hex(4)}",
                      created_by=user)
    if tune:
        plan = recipe_of(profile)
        with plan.training_file.open("rb") as handle:
            training = files.create_file(org, upload=handle, filename=plan.training_file.name,
                                         purpose="fine-tune", created_by=user)
        job = finetune.create_job(org, {
            "model": base.name, "training_file": training.id, "suffix": profile.key[:40],
            "seed": plan.seed, "hyperparameters": plan.hyperparameters,
            "adapter": plan.adapter, "metadata": {"compliance_variant": name}}, user=user)
        variant.fine_tune_job = job
    else:
        variant.model, variant.state = base, VariantState.EVALUATING
    variant.save()
    _event("compliance_variant.build_started", org, f"variant:{name}", user,
           variant_id=str(variant.id), profile=profile.key, base=base.name,
           fine_tune_job=variant.fine_tune_job_id or "")
    return variant


def follow_fine_tune(variant: Variant) -> Variant:
    """Move a variant on from ``fine_tuning`` once its job ended; returns it refreshed."""
    variant.refresh_from_db()
    if variant.state != VariantState.FINE_TUNING or variant.fine_tune_job_id is None:
        return variant
    job = FineTuningJob.objects.get(pk=variant.fine_tune_job_id)
    if job.status == JobStatus.SUCCEEDED and job.result_model_id:
        with transaction.atomic():
            variant.model_id = job.result_model_id
            variant.state = VariantState.EVALUATING
            variant.save(update_fields=["model", "state"])
    elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        reason = (job.error or {}).get("message", job.status)
        fail_build(variant, f"the fine-tune job {job.id} {job.status}: {reason}")
    return variant


@transaction.atomic
def fail_build(variant: Variant, reason: str, card: dict[str, Any] | None = None) -> Variant:
    variant.state, variant.error = VariantState.FAILED, reason
    if card is not None:
        variant.card = card
    variant.save(update_fields=["state", "error", "card"])
    _event("compliance_variant.failed", variant.organization, f"variant:{variant.name}",
           variant_id=str(variant.id), reason=reason[:500])
    return variant


@transaction.atomic
def conclude_gate(variant: Variant, card: dict[str, Any]) -> Variant:
    """Store the gate's results as the model card; publish only if every threshold passed
    (``card["passed"]``), retiring an earlier published build of the same name."""
    variant = Variant.objects.select_for_update().get(pk=variant.pk)
    if variant.state != VariantState.EVALUATING:
        raise Conflict(f"{variant.name} is {variant.state}, not being evaluated")
    if not card.get("passed"):
        failing = [c["id"] for c in card.get("failing_cases", [])]
        return fail_build(variant, "the evaluation gate failed: " + (
            ", ".join(card.get("failed_thresholds", [])) or "see the card")
            + (f" (cases {', '.join(failing[:10])})" if failing else ""), card)
    now = timezone.now()
    Variant.objects.filter(organization=variant.organization, name=variant.name,
                           state=VariantState.PUBLISHED).update(state=VariantState.RETIRED)
    variant.state, variant.card, variant.published_at = VariantState.PUBLISHED, card, now
    variant.error = ""
    variant.save(update_fields=["state", "card", "published_at", "error"])
    _event("compliance_variant.published", variant.organization, f"variant:{variant.name}",
           variant_id=str(variant.id), suite=card.get("suite", {}).get("version", ""))
    return variant


def model_card(variant: Variant) -> dict[str, Any]:
    """The variant as the console and API show it: its card plus where it came from."""
    return {"id": str(variant.id), "name": variant.name, "state": variant.state,
            "candidate_name": variant.candidate_name, "profile": variant.profile.key,
            "profile_version": variant.profile.version, "base": variant.base.name,
            "adapter": variant.model.name if variant.model_id and variant.model_id !=
            variant.base_id else None, "fine_tune_job": variant.fine_tune_job_id,
            "created_at": variant.created_at.isoformat(),
            "published_at": variant.published_at.isoformat() if variant.published_at
            else None, "error": variant.error, "card": variant.card}
