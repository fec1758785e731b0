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
