# SPDX-License-Identifier: Apache-2.0
"""Which node a new replica goes to: pure choice over a snapshot of the nodes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NodeSlot:
    """What the scheduler knows of one schedulable node while it places replicas."""

    name: str
    gpu_indices: list[int] = field(default_factory=list)
    used_gpus: set[int] = field(default_factory=set)
    replicas_total: int = 0  # replicas of every deployment on this node
    replicas_here: int = 0  # replicas of the deployment being placed

    @property
    def has_gpus(self) -> bool:
        return bool(self.gpu_indices)

    def free_gpus(self) -> list[int]:
        return [i for i in self.gpu_indices if i not in self.used_gpus]


def gpus_wanted(slot: NodeSlot, gpus_per_replica: int | None) -> int | None:
    """GPUs a replica needs on this node, or None if it cannot run there at all.

    A GPU host runs only GPU replicas (the CUDA build of vLLM); a CPU host runs only
    replicas that ask for no GPU. ``None`` means "whatever the host has": one GPU, or none.
    """
    if slot.has_gpus:
        need = 1 if gpus_per_replica is None else gpus_per_replica
        return need if 0 < need <= len(slot.free_gpus()) else None
    return 0 if not gpus_per_replica else None


def place_one(slots: list[NodeSlot], gpus_per_replica: int | None
              ) -> tuple[NodeSlot, list[int]] | None:
    """Pick the fitting node with the fewest replicas of this deployment, then fewest overall.

    The chosen slot is updated in place, so calling again spreads the next replica.
    """
    fitting = [(slot, need) for slot in slots
               if (need := gpus_wanted(slot, gpus_per_replica)) is not None]
    if not fitting:
        return None
    slot, need = min(fitting, key=lambda f: (f[0].replicas_here, f[0].replicas_total,
                                             f[0].name))
    gpus = slot.free_gpus()[:need]
    slot.used_gpus.update(gpus)
    slot.replicas_here += 1
    slot.replicas_total += 1
    return slot, gpus
