# SPDX-License-Identifier: Apache-2.0
"""GET /v1/models lists only what can be served: the console's Playground offers exactly
this list, so a model that is registered but not deployed (or undeployed) is not in it."""

from __future__ import annotations

import httpx
import pytest
from waiting import wait_for

pytestmark = pytest.mark.slow


def listed(gateway, key: str) -> set[str]:
    response = httpx.get(gateway.v1 + "/models", headers={"authorization": f"Bearer {key}"},
                         timeout=20)
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["data"]}


def test_registered_but_not_deployed_models_are_not_listed(serving, upstream, gateway, org):
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, DeploymentState

    serving.model("served", replica_ports=(upstream.port,))
    serving.model("starting")  # deployed, no replica READY yet: servable soon, listed
    undeployed = serving.model("undeployed", organization=org)
    Deployment.objects.filter(model=undeployed).update(state=DeploymentState.STOPPED)
    RegisteredModel.objects.create(name="registered-only", organization=org,
                                   source=Source.HUGGINGFACE, repo_id="test/registered-only")

    # The gateway's catalogue follows the database within a refresh (about a second):
    # "undeployed" was listed until its deployment stopped.
    wanted = {"served", "starting"}
    wait_for(lambda: listed(gateway, serving.key) == wanted, 15,
             f"the list to be exactly {wanted}")
    assert listed(gateway, serving.key) == wanted


@pytest.mark.gateway_env(POTLUCK_GATEWAY_CATALOG_REFRESH_SECONDS="600")
def test_a_model_published_a_moment_ago_is_served_at_once(serving, upstream, gateway, org):
    """A client that saw its fine-tune succeed calls the new model at once: a request for
    a model the catalogue does not know reloads it before answering 404 (here the
    background refresh is 10 minutes away, so only that reload can find it)."""
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState

    assert listed(gateway, serving.key) == set()  # the gateway is up and has loaded
    model = RegisteredModel.objects.create(name="fresh", organization=org,
                                           source=Source.HUGGINGFACE, repo_id="test/fresh",
                                           context_length=512,
                                           capabilities=["chat", "completions"])
    deployment = Deployment.objects.create(model=model, organization=org, replicas=1)
    node = Node.objects.create(name="node-fresh", queue="node.fresh", hostname="localhost")
    Replica.objects.create(deployment=deployment, node=node, port=upstream.port,
                           state=ReplicaState.READY)

    answer = httpx.post(gateway.v1 + "/completions", timeout=20,
                        headers={"authorization": f"Bearer {serving.key}"},
                        json={"model": "fresh", "prompt": "x", "max_tokens": 2})
    assert answer.status_code == 200, answer.text
    unknown = httpx.post(gateway.v1 + "/completions", timeout=20,
                         headers={"authorization": f"Bearer {serving.key}"},
                         json={"model": "no-such-model", "prompt": "x", "max_tokens": 2})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
