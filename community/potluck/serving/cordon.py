# SPDX-License-Identifier: Apache-2.0
"""Cordoned nodes take no new replicas, e.g. while `potluck up` stops the node's replicas.

A cordon lives in Redis with a time limit, so a crash mid-shutdown cannot fence a node
for ever; a node agent that starts lifts its own node's cordon.
"""

from __future__ import annotations

from potluck.redis_client import get_redis

CORDON_KEY = "potluck:node:cordoned:{name}"


def cordon_node(name: str, seconds: int = 900) -> None:
    get_redis().set(CORDON_KEY.format(name=name), "1", ex=seconds)


def uncordon_node(name: str) -> None:
    get_redis().delete(CORDON_KEY.format(name=name))


def cordoned_node_names() -> set[str]:
    prefix = CORDON_KEY.format(name="")
    return {key.decode().removeprefix(prefix)
            for key in get_redis().scan_iter(match=prefix + "*", count=100)}
