# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Compliance fixtures: the feature licensed in this process, a real gateway process that
trusts the test issuer (so it follows the same licence), and a fake replica."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream, UpstreamThread
from gateway_harness import GatewayProcess, running_gateway

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins"


@pytest.fixture
def compliance_on(licensed):
    """A licence granting "compliance" installed; the feature is on in this process."""
    from potluck import extensions

    licensed(features=["compliance"])
    assert extensions.feature_available("compliance")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    thread = UpstreamThread(FakeUpstream())
    yield thread.start()
    thread.stop()


@pytest.fixture
def licensed_gateway(issuer, live_env, tmp_path) -> Iterator[GatewayProcess]:
    """A gateway process whose licence verifier trusts the test issuer."""
    public = tmp_path / "issuer.pem"
    public.write_bytes(issuer.public_pem)
    env = {**live_env, "POTLUCK_PLUGINS": "potluck_test_issuer_key",
           "POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE": str(public),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGIN_DIR),
                                                       live_env.get("PYTHONPATH")]))}
    with running_gateway(env, tmp_path) as gateway:
        yield gateway


@pytest.fixture
def served_model(transactional_db):
    """Registers a public model with one READY replica at ``port``."""
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState

    def make(name: str, port: int) -> RegisteredModel:
        model = RegisteredModel.objects.create(name=name, source=Source.HUGGINGFACE,
                                               repo_id=f"test/{name}", context_length=512)
        deployment = Deployment.objects.create(model=model, replicas=1)
        node = Node.objects.create(name=f"node-{name}", queue=f"node.{name}",
                                   hostname="localhost")
        Replica.objects.create(deployment=deployment, node=node, port=port,
                               state=ReplicaState.READY)
        return model

    return make


@pytest.fixture
def demo_base(db):
    """A public base model registered by path (not served)."""
    from potluck.registry.models import RegisteredModel, Source

    return RegisteredModel.objects.create(name="potluck-base", source=Source.LOCAL,
                                          path="/nonexistent/potluck-base")
