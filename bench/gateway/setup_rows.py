# SPDX-License-Identifier: Apache-2.0
"""Database rows the gateway routes by: an org, one API key per phase, models and replicas.

Each model gets an ACTIVE deployment and one READY replica on a port of this machine
(as the gateway tests do), so the gateway's catalogue sends it there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Far above anything the bench sends, yet set: the Lua limiter checks every request.
HUGE_LIMIT = 1_000_000_000


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


@dataclass(frozen=True)
class ApiKey:
    id: str
    secret: str


def create_org() -> object:
    from potluck.accounts import services

    org = services.create_organization("Bench")
    org.rpm_limit = HUGE_LIMIT
    org.tpm_limit = HUGE_LIMIT
    org.save(update_fields=["rpm_limit", "tpm_limit"])
    return org


def create_key(org: object, name: str) -> ApiKey:
    from potluck.accounts import services

    key, secret = services.create_api_key(org, name, scopes=["inference"])  # type: ignore[arg-type]
    key.rpm_limit = HUGE_LIMIT
    key.tpm_limit = HUGE_LIMIT
    key.save(update_fields=["rpm_limit", "tpm_limit"])
    return ApiKey(str(key.id), secret)


def serve_model(name: str, port: int, *, context: int = 512, host: str = "127.0.0.1") -> None:
    """A public model with one READY replica at host:port."""
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState

    model = RegisteredModel.objects.create(name=name, source=Source.HUGGINGFACE,
                                           repo_id=f"bench/{name}", context_length=context)
    deployment = Deployment.objects.create(model=model, replicas=1)
    node = Node.objects.create(name=f"bench-{name}", queue=f"node.bench-{name}",
                               hostname="localhost")
    Replica.objects.create(deployment=deployment, node=node, host=host, port=port,
                           state=ReplicaState.READY)
