# SPDX-License-Identifier: Apache-2.0
"""Every route that takes an id, enumerated from the URL configuration (never listed by
hand, so a new route is covered the day it is added): another organization's object
answers 404 to a key holding every scope — never 403, never the object.

A route needs an entry in OBJECTS (how to make another organization's object for it) or
in NOT_TENANT_OBJECTS (why it names no tenant's object); a route in neither fails the
test, naming itself."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from id_routes import id_routes, methods
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


# Routes whose id names no organization's object, and why.
NOT_TENANT_OBJECTS = {
    "api/nodes/{name}": "node agents are the installation's hosts, shown to every org",
}


def _model(org):
    from potluck.registry.models import RegisteredModel, Source

    name = f"theirs-{uuid.uuid4().hex[:8]}"
    return RegisteredModel.objects.create(name=name, organization=org,
                                          source=Source.HUGGINGFACE, repo_id=f"x/{name}")


def _deployment(org):
    from potluck.serving.models import Deployment

    return Deployment.objects.create(model=_model(org), organization=org, replicas=1)


def _replica(org):
    from potluck.nodes.models import Node
    from potluck.serving.models import Replica

    name = f"n-{uuid.uuid4().hex[:8]}"
    node = Node.objects.create(name=name, queue=f"node.{name}", hostname="h")
    return Replica.objects.create(deployment=_deployment(org), node=node, port=9)


def _file(org):
    from potluck.files import services

    line = json.dumps({"messages": [{"role": "user", "content": "a"},
                                    {"role": "assistant", "content": "b"}]})
    return services.create_file(org, upload=io.BytesIO(line.encode() + b"\n"),
                                filename="t.jsonl", purpose="fine-tune")


def _job(org):
    from potluck.finetune.models import FineTuningJob

    return FineTuningJob.objects.create(organization=org, base_model=_model(org),
                                        model_name="theirs", training_file_id=_file(org).pk,
                                        seed=1)


def _batch(org):
    from potluck.batches.models import Batch

    return Batch.objects.create(organization=org, input_file_id="file-x",
                                endpoint="/v1/completions",
                                expires_at=timezone.now() + timedelta(days=1))


def _invitation(org):
    from potluck.accounts import invitations

    invitation, _ = invitations.invite(org, f"{uuid.uuid4().hex[:8]}@elsewhere.test", "member",
                                       invited_by=None, granted_by_owner=True)
    return invitation


def _key(org):
    from potluck.accounts import services

    return services.create_api_key(org, "theirs")[0]


def _member(org):
    from potluck.accounts.models import Membership

    return Membership.objects.filter(organization=org).first()


# Routes only a signed-in person may use (an API key acts for an organization, not a
# person): a key gets the same 403 whatever the id, so it learns nothing of the object.
PERSON_ONLY = ("api/invitations/received/",)

# Route (with {param} placeholders) prefix → the other organization's object for it.
OBJECTS: dict[str, Callable[[Any], Any]] = {
    "api/orgs/{slug}": lambda org: org.slug,
    "api/members/{pk}": lambda org: _member(org).pk,
    "api/invitations/{pk}": lambda org: _invitation(org).pk,
    "api/invitations/received/{pk}": lambda org: _invitation(org).pk,
    "api/keys/{pk}": lambda org: _key(org).pk,
    "api/models/{pk}": lambda org: _model(org).pk,
    "api/deployments/{pk}": lambda org: _deployment(org).pk,
    "api/replicas/{pk}": lambda org: _replica(org).pk,
    "v1/files/{file_id}": lambda org: _file(org).pk,
    "v1/fine_tuning/jobs/{job_id}": lambda org: _job(org).pk,
    "api/fine-tuning/jobs/{job_id}": lambda org: _job(org).pk,
    "v1/batches/{batch_id}": lambda org: _batch(org).pk,
}


def test_another_orgs_objects_answer_404_on_every_id_route(org, other_org, key_for,
                                                           user_client):
    by_key = APIClient()
    by_key.credentials(HTTP_AUTHORIZATION="Bearer " + key_for(
        org, ["read", "write", "admin", "inference"]))
    by_person = user_client(org, "owner")
    checked, unknown = [], []
    for route, pattern in id_routes(enterprise=False):
        if route in NOT_TENANT_OBJECTS:
            continue
        make = next((f for prefix, f in OBJECTS.items() if route.startswith(prefix)), None)
        if make is None:
            unknown.append(route)
            continue
        path = "/" + re.sub(r"\{\w+\}", str(make(other_org)), route)
        nowhere = "/" + re.sub(r"\{\w+\}", "00000000-0000-0000-0000-000000000000", route)
        for method in methods(pattern):
            for caller, client in (("person", by_person), ("key", by_key)):
                response = getattr(client, method)(path, {}, format="json")
                expected = 404
                if caller == "key" and route.startswith(PERSON_ONLY):
                    expected = getattr(client, method)(nowhere, {}, format="json").status_code
                    assert expected == 403
                assert response.status_code == expected, (
                    caller, method.upper(), path, response.status_code, response.content[:200])
            checked.append(f"{method.upper()} {route}")
    assert unknown == [], ("routes with an id but no entry in OBJECTS or NOT_TENANT_OBJECTS: "
                           f"{unknown}")
    assert len(checked) >= 20, checked
    print(f"tenancy: {len(checked)} route/method pairs answer 404 for another org's objects")
