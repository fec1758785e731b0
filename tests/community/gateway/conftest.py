# SPDX-License-Identifier: Apache-2.0
"""A real gateway process (gunicorn + uvicorn worker) routed to a fake upstream."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fake_upstream import FakeUpstream, UpstreamThread
from gateway_harness import GatewayProcess, running_gateway, wait_until_listed


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    thread = UpstreamThread(FakeUpstream())
    yield thread.start()
    thread.stop()


@pytest.fixture
def misbehaving_upstream() -> Iterator[Callable[[str], FakeUpstream]]:
    """Start extra fake upstreams in a given failure mode; all are stopped afterwards."""
    started: list[UpstreamThread] = []

    def start(mode: str) -> FakeUpstream:
        thread = UpstreamThread(FakeUpstream())
        started.append(thread)
        fake = thread.start()
        fake.behaviour.mode = mode
        return fake

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def gateway(live_env, tmp_path, request) -> Iterator[GatewayProcess]:
    """A gunicorn web process; ``@pytest.mark.gateway_env(NAME=value)`` adds to its env
    (e.g. ``plugin_env(...)`` to install test plug-ins)."""
    marker = request.node.get_closest_marker("gateway_env")
    with running_gateway({**live_env, **(marker.kwargs if marker else {})}, tmp_path) as gw:
        yield gw


@pytest.fixture
def serving(transactional_db, org, other_org, key_for, request):
    """A public model deployed with one READY replica; returns a builder for more. With
    the ``gateway`` fixture, each new model is waited for until the gateway lists it."""
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState

    class Serving:
        def __init__(self) -> None:
            self.key = key_for(org, ["inference", "read"])
            self.other_key = key_for(other_org, ["inference"])

        def model(self, name: str, *, organization=None, context: int = 512,
                  replica_ports: tuple[int, ...] = (),
                  capabilities: tuple[str, ...] = ("chat", "completions")) -> RegisteredModel:
            model = RegisteredModel.objects.create(
                name=name, organization=organization, source=Source.HUGGINGFACE,
                repo_id=f"test/{name}", context_length=context,
                capabilities=list(capabilities))
            deployment = Deployment.objects.create(model=model, organization=organization,
                                                   replicas=len(replica_ports))
            # One node per model: replicas of two models may share a fake upstream port.
            node = Node.objects.create(name=f"node-{name}", queue=f"node.{name}",
                                       hostname="localhost")
            for port in replica_ports:
                Replica.objects.create(deployment=deployment, node=node, port=port,
                                       state=ReplicaState.READY)
            if "gateway" in request.fixturenames:
                key = self.other_key if organization == other_org else self.key
                wait_until_listed(request.getfixturevalue("gateway"), key, name)
            return model

    return Serving()
