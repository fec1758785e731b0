# SPDX-License-Identifier: Apache-2.0
"""Batch input files, and a fake vLLM server for the runner's own logic (retries,
resumption, cancellation, expiry); the end-to-end test runs real vLLM instead."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_replica import FakeReplica, ReplicaThread


@pytest.fixture
def batch_file() -> Callable[..., object]:
    """Uploads (through the Files service) a batch input file of these request lines."""
    from potluck.files import services as files

    def upload(org, lines: list[dict[str, Any]], purpose: str = "batch"):
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return files.create_file(org, upload=io.BytesIO(data), filename="input.jsonl",
                                 purpose=purpose)

    return upload


@pytest.fixture
def fake_replicas() -> Iterator[Callable[..., FakeReplica]]:
    started: list[ReplicaThread] = []

    def start(**behaviour: Any) -> FakeReplica:
        thread = ReplicaThread(FakeReplica(**behaviour))
        started.append(thread)
        return thread.start()

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def served(transactional_db) -> Callable[..., object]:
    """Registers a model with a deployment whose READY replicas are at these ports."""
    from potluck.nodes.models import Node
    from potluck.registry.models import RegisteredModel, Source
    from potluck.serving.models import Deployment, Replica, ReplicaState

    def serve(name: str, ports: list[int], organization=None) -> RegisteredModel:
        model = RegisteredModel.objects.create(
            name=name, organization=organization, source=Source.HUGGINGFACE,
            repo_id=f"test/{name}", context_length=512)
        deployment = Deployment.objects.create(model=model, organization=organization,
                                               replicas=len(ports))
        # A node per model: two models' replicas may share a fake replica's port.
        node = Node.objects.create(name=f"node-{name}-{organization and organization.pk}",
                                   queue=f"node.{name}", hostname="localhost")
        for port in ports:
            Replica.objects.create(deployment=deployment, node=node, port=port,
                                   state=ReplicaState.READY)
        return model

    return serve


@pytest.fixture
def api_key(org):
    from potluck.accounts import services as accounts

    key, _ = accounts.create_api_key(org, "batch-key")
    return key


@pytest.fixture
def quick(settings):
    """Short heartbeats and back-offs, so cancellation and expiry are seen quickly."""
    settings.BATCH_HEARTBEAT_SECONDS = 0.1
    settings.BATCH_LEASE_SECONDS = 3.0
