# SPDX-License-Identifier: Apache-2.0
"""Model aliases (``extensions.model_aliases``): an extension's name is served like the
model it names, through the same replicas, seen only by the organization it is for, with
its attributes on the entry; an alias of a model that is not served is left out."""

from __future__ import annotations

import pytest

from potluck import extensions
from potluck.inference.catalog import Catalog, load_snapshot
from potluck.nodes.models import Node
from potluck.registry.models import RegisteredModel, Source
from potluck.serving.models import Deployment, DeploymentState, Replica, ReplicaState


@pytest.fixture
def alias_provider():
    aliases: list[extensions.ModelAlias] = []
    extensions.model_aliases.register("test-aliases", lambda: aliases, replace=True)
    yield aliases
    extensions.model_aliases.unregister("test-aliases")


def test_an_alias_routes_to_its_targets_replicas_for_its_org_only(db, org, other_org,
                                                                  alias_provider):
    base = RegisteredModel.objects.create(name="base-m", source=Source.LOCAL, path="/m")
    idle = RegisteredModel.objects.create(name="idle-m", source=Source.LOCAL, path="/i")
    deployment = Deployment.objects.create(model=base, replicas=1,
                                           state=DeploymentState.ACTIVE)
    node = Node.objects.create(name="n", queue="node.n", hostname="n")
    Replica.objects.create(deployment=deployment, node=node, host="127.0.0.1", port=9,
                           state=ReplicaState.READY)
    alias_provider.extend([
        extensions.ModelAlias("base-m:finance", str(base.id), str(org.id), {"profile": "f"}),
        extensions.ModelAlias("idle-m:finance", str(idle.id), str(org.id)),
    ])
    catalog = Catalog()
    catalog.replace(load_snapshot())

    entry = catalog.resolve("base-m:finance", str(org.id))
    assert entry is not None and entry.attributes == {"profile": "f"}
    assert entry.route_id == str(base.id) and entry.served_name == "base-m"
    assert catalog.pick(entry, set()) is not None
    assert catalog.resolve("base-m:finance", str(other_org.id)) is None
    assert catalog.resolve("idle-m:finance", str(org.id)) is None  # not served
    assert catalog.resolve("base-m", str(org.id)).attributes == {}

    extensions.model_aliases.unregister("test-aliases")  # e.g. the feature switched off
    assert catalog.resolve("base-m:finance", str(org.id)) is None  # before any refresh
    assert catalog.resolve("base-m", str(org.id)) is not None


def test_a_broken_alias_provider_leaves_the_catalogue_working(db, org, alias_provider):
    def broken() -> list[extensions.ModelAlias]:
        raise RuntimeError("down")

    extensions.model_aliases.register("broken", broken, replace=True)
    try:
        RegisteredModel.objects.create(name="solo", source=Source.LOCAL, path="/s")
        assert load_snapshot().models == {}  # nothing deployed, and no exception
    finally:
        extensions.model_aliases.unregister("broken")
