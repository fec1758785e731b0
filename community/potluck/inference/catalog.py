# SPDX-License-Identifier: Apache-2.0
"""What the gateway can route to: servable models and their READY replicas.

Refreshed from Postgres about once a second per worker, so a replica that turns
READY (or DRAINING) is picked up (or left alone) within a second; between
refreshes routing is a dictionary lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from django.db.models import Q
from yarl import URL

from potluck import extensions
from potluck.registry.models import RegisteredModel
from potluck.serving.adapters import server_name
from potluck.serving.models import Deployment, DeploymentState, Replica, ReplicaState


@dataclass(frozen=True)
class ModelEntry:
    id: str
    name: str
    organization_id: str | None
    route_id: str  # the deployed base model whose replicas serve this name
    parent: str | None  # base model name, for adapters
    context_length: int | None
    created: int
    served_name: str = ""  # the name the replicas know it by (adapters: their own)
    # What an extension's model alias attached (``extensions.ModelAlias.attributes``).
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)
    provider: str = ""  # the ``extensions.model_aliases`` key of an alias, else ""
    capabilities: frozenset[str] = frozenset({"chat", "completions"})

    def __post_init__(self) -> None:
        if not self.served_name:
            object.__setattr__(self, "served_name", self.name)

    def public_body(self, raw: bytes) -> bytes:
        """An upstream answer (or one SSE event) with the server's name for the model
        replaced by the caller's; unchanged when the two are the same."""
        if self.served_name == self.name:
            return raw
        return raw.replace(orjson.dumps(self.served_name), orjson.dumps(self.name))


@dataclass(eq=False)
class ReplicaEntry:
    id: str
    url: str
    adapters: frozenset[str] = frozenset()  # LoRA adapters this server holds now
    in_flight: int = 0
    _urls: dict[str, URL] = field(default_factory=dict, repr=False)

    def url_for(self, path: str) -> URL:
        """The URL of ``path`` on this replica, parsed once (not on every request)."""
        found = self._urls.get(path)
        if found is None:
            found = self._urls[path] = URL(self.url + path)
        return found


@dataclass
class Snapshot:
    models: dict[str, list[ModelEntry]] = field(default_factory=dict)
    # Every registered name, deployed or not: the organizations that own it (None: public).
    registered: dict[str, set[str | None]] = field(default_factory=dict)
    replicas: dict[str, list[ReplicaEntry]] = field(default_factory=dict)
    replica_states: dict[str, int] = field(default_factory=dict)


def load_snapshot() -> Snapshot:
    """Runs on the gateway's database thread."""
    deployments = list(Deployment.objects.filter(state=DeploymentState.ACTIVE)
                       .values("model_id", "engine_args"))
    base_ids = [d["model_id"] for d in deployments]
    lora_base_ids = [d["model_id"] for d in deployments
                     if (d["engine_args"] or {}).get("enable_lora")]
    snapshot = Snapshot()
    rows = (RegisteredModel.objects.filter(Q(id__in=base_ids) | Q(base_id__in=lora_base_ids))
            .select_related("base")
            .only("id", "name", "organization_id", "base_id", "base__name", "context_length",
                  "created_at", "capabilities", "base__capabilities"))
    for m in rows:
        entry = ModelEntry(
            id=str(m.id), name=m.name,
            organization_id=str(m.organization_id) if m.organization_id else None,
            route_id=str(m.base_id or m.id), parent=m.base.name if m.base_id else None,
            context_length=m.context_length, created=int(m.created_at.timestamp()),
            served_name=server_name(m.id) if m.base_id else m.name,
            capabilities=frozenset(m.base.capabilities if m.base_id else m.capabilities))
        snapshot.models.setdefault(m.name, []).append(entry)
    _add_aliases(snapshot)
    for name, org in RegisteredModel.objects.values_list("name", "organization_id"):
        snapshot.registered.setdefault(name, set()).add(str(org) if org else None)
    for r in Replica.objects.filter(state=ReplicaState.READY, deployment__model_id__in=base_ids,
                                    deployment__state=DeploymentState.ACTIVE
                                    ).values("id", "host", "port", "deployment__model_id",
                                             "adapters"):
        snapshot.replicas.setdefault(str(r["deployment__model_id"]), []).append(
            ReplicaEntry(id=str(r["id"]), url=f"http://{r['host']}:{r['port']}",
                         adapters=frozenset(r["adapters"])))
    for state in ReplicaState:
        snapshot.replica_states[state.value] = 0
    for row in Replica.objects.exclude(state=ReplicaState.STOPPED).values_list("state",
                                                                               flat=True):
        snapshot.replica_states[row] = snapshot.replica_states.get(row, 0) + 1
    return snapshot


def _add_aliases(snapshot: Snapshot) -> None:
    """Extensions' model aliases, each routed like the served model it names."""
    aliases = extensions.model_aliases_now()
    if not aliases:
        return
    by_id = {entry.id: entry for group in snapshot.models.values() for entry in group}
    for provider, alias in aliases:
        target = by_id.get(alias.target_id)
        if target is None:
            continue  # not served (undeployed, or an adapter whose base has no LoRA)
        snapshot.models.setdefault(alias.name, []).append(replace(
            target, name=alias.name, organization_id=alias.organization_id,
            attributes=dict(alias.attributes), provider=provider))


class Catalog:
    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def replace(self, snapshot: Snapshot) -> None:
        # Keep in-flight counts of replicas that survive the refresh.
        previous = {r.id: r for group in self.snapshot.replicas.values() for r in group}
        for group in snapshot.replicas.values():
            for i, replica in enumerate(group):
                kept = previous.get(replica.id)
                if kept is not None and kept.url == replica.url:
                    kept.adapters = replica.adapters
                    group[i] = kept
        self.snapshot = snapshot

    def resolve(self, name: str, organization_id: str) -> ModelEntry | None:
        """The org's own model of that name first, else a public one; never another org's."""
        public = None
        for entry in self.snapshot.models.get(name, ()):
            if entry.provider and extensions.model_aliases.get(entry.provider) is None:
                continue  # its provider went away (e.g. a licence lapsed): not served
            if entry.organization_id == organization_id:
                return entry
            if entry.organization_id is None:
                public = entry
        return public

    def registered(self, name: str, organization_id: str) -> bool:
        """Whether the organization could call ``name`` if it were deployed (its own model
        or a public one); another organization's model is never acknowledged."""
        owners = self.snapshot.registered.get(name, ())
        return organization_id in owners or None in owners

    def visible(self, organization_id: str) -> list[ModelEntry]:
        found = []
        for name in sorted(self.snapshot.models):
            entry = self.resolve(name, organization_id)
            if entry is not None:
                found.append(entry)
        return found

    def pick(self, entry: ModelEntry, tried: set[str]) -> ReplicaEntry | None:
        """Fewest in-flight requests first, among READY replicas not tried yet (for an
        adapter: among those that hold it)."""
        best = None
        for replica in self.snapshot.replicas.get(entry.route_id, ()):
            if replica.id in tried or (entry.parent is not None
                                       and entry.served_name not in replica.adapters):
                continue
            if best is None or replica.in_flight < best.in_flight:
                best = replica
        return best
