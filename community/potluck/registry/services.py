# SPDX-License-Identifier: Apache-2.0
"""What the registry does: register, validate and remove models and adapters."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from potluck.accounts.models import Organization, User
from potluck.errors import Conflict, Forbidden, InvalidInput, NotFound
from potluck.registry.models import Kind, RegisteredModel, Source
from potluck.registry.validation import inspect_adapter_directory, inspect_model_directory

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def _clean_name(name: str, org: Organization | None) -> str:
    name = name.strip()
    if not _NAME_RE.match(name):
        raise InvalidInput("use up to 200 letters, digits and . _ : / -, starting with a "
                           "letter or digit", field="name")
    taken = RegisteredModel.objects.filter(name=name)
    # An org's model may not shadow a public one; a public one may not shadow any.
    clash = taken.filter(organization__isnull=True) if org is not None else taken
    if clash.exists() or (org is not None and taken.filter(organization=org).exists()):
        raise Conflict(f"a model named {name!r} already exists", field="name")
    return name


def _check_allowed_root(directory: Path) -> None:
    resolved = directory.expanduser().resolve()
    if not any(resolved.is_relative_to(root) for root in settings.MODEL_ROOTS):
        roots = ", ".join(str(r) for r in settings.MODEL_ROOTS)
        raise Forbidden(f"models may only be registered from {roots} "
                        "(POTLUCK_MODEL_ROOTS)", field="path")


def _check_may_register(organization: Organization | None, operator: bool) -> None:
    if organization is None and not operator:
        raise Forbidden("only the operator can register public models")


def _local_directory(path: str | Path, operator: bool) -> Path:
    """An absolute directory, inside POTLUCK_MODEL_ROOTS unless the operator asks."""
    directory = Path(path)
    if not directory.is_absolute():
        raise InvalidInput(f"{path} must be an absolute path", field="path")
    if not operator:
        _check_allowed_root(directory)
    return directory


def _save(model: RegisteredModel) -> RegisteredModel:
    try:
        with transaction.atomic():
            model.save(force_insert=True)
    except IntegrityError as exc:  # a concurrent registration took the name
        raise Conflict(f"a model named {model.name!r} already exists", field="name") from exc
    log.info("model registered: %s (%s)", model.name, model.kind)
    return model


def register_local_model(
    name: str, path: str | Path, *, organization: Organization | None,
    created_by: User | None = None, license: str = "", operator: bool = False,
) -> RegisteredModel:
    """Register a model directory after checking that vLLM could load it.

    ``organization=None`` makes the model public; only the operator (the CLI) may do that
    or register from outside POTLUCK_MODEL_ROOTS.
    """
    _check_may_register(organization, operator)
    directory = _local_directory(path, operator)
    clean = _clean_name(name, organization)
    info = inspect_model_directory(directory)
    return _save(RegisteredModel(
        name=clean, organization=organization, kind=Kind.BASE, source=Source.LOCAL,
        path=str(directory.resolve()), architecture=info.architecture,
        context_length=info.context_length, size_bytes=info.size_bytes,
        capabilities=list(info.capabilities), license=license.strip()[:100],
        created_by=created_by,
    ))


def register_hub_model(
    name: str, repo_id: str, *, organization: Organization | None, revision: str = "main",
    architecture: str = "", context_length: int | None = None, license: str = "",
    created_by: User | None = None, operator: bool = False,
) -> RegisteredModel:
    """Register a Hugging Face repository id, for hosts that can reach a hub."""
    _check_may_register(organization, operator)
    repo_id = repo_id.strip()
    if not _REPO_RE.match(repo_id):
        raise InvalidInput(f"{repo_id!r} is not a repository id like 'owner/name'",
                           field="repo_id")
    if context_length is not None and context_length <= 0:
        raise InvalidInput("must be a positive number of tokens", field="context_length")
    clean = _clean_name(name, organization)
    return _save(RegisteredModel(
        name=clean, organization=organization, kind=Kind.BASE, source=Source.HUGGINGFACE,
        repo_id=repo_id, revision=(revision or "main").strip()[:100],
        architecture=architecture.strip()[:100], context_length=context_length,
        license=license.strip()[:100], created_by=created_by,
    ))


def register_local_adapter(
    name: str, path: str | Path, *, base: RegisteredModel, organization: Organization | None,
    created_by: User | None = None, operator: bool = False,
) -> RegisteredModel:
    _check_may_register(organization, operator)
    if base.kind != Kind.BASE:
        raise InvalidInput("an adapter's base must be a base model, not an adapter",
                           field="base")
    directory = _local_directory(path, operator)
    clean = _clean_name(name, organization)
    info = inspect_adapter_directory(directory)
    return _save(RegisteredModel(
        name=clean, organization=organization, kind=Kind.ADAPTER, base=base,
        source=Source.LOCAL, path=str(directory.resolve()), architecture=base.architecture,
        context_length=base.context_length, size_bytes=info.size_bytes,
        capabilities=list(base.capabilities),
        adapter_rank=info.rank, created_by=created_by,
    ))


def resolve(name_or_id: str, organization: Organization | None) -> RegisteredModel:
    """A model the organization may use, by name or id (``None``: public models only)."""
    visible = (RegisteredModel.objects.for_org(organization) if organization is not None
               else RegisteredModel.objects.filter(organization__isnull=True))
    # The org's own model comes first should a name exist both privately and publicly.
    model = visible.filter(name=name_or_id).order_by("organization_id").first()
    if model is None:
        try:
            model = visible.filter(pk=uuid.UUID(name_or_id)).first()
        except ValueError:  # neither a known name nor an id
            model = None
    if model is None:
        raise NotFound(f"no model named {name_or_id!r}", field="model")
    return model


@transaction.atomic
def delete_model(model: RegisteredModel, *, organization: Organization | None) -> None:
    if model.organization_id != (organization.pk if organization else None):
        raise Forbidden("public models are managed by the operator")
    if model.adapters.exists():
        names = ", ".join(model.adapters.values_list("name", flat=True)[:5])
        raise Conflict(f"remove its adapters first: {names}")
    if model.deployments.exclude(state="stopped").exists():
        raise Conflict(f"{model.name} is deployed; undeploy it first")
    model.deployments.all().delete()  # stopped ones only: their replicas are history
    model.delete()
    log.info("model removed: %s", model.name)
