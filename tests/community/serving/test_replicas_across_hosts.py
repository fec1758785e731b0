# SPDX-License-Identifier: Apache-2.0
"""Multi-host addressing: a node's replicas listen on, and are reached at, its address;
beat looks for lost nodes often enough for the configured lost-after time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def settings_in_a_process(**env: str) -> list[str]:
    """SERVING_REPLICA_BIND_HOST, NODE_ADDRESS and the lost-node check's period, as a
    process that starts with ``env`` reads them (potluck.settings reads them once)."""
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.SERVING_REPLICA_BIND_HOST, s.NODE_ADDRESS, "
            "s.CELERY_BEAT_SCHEDULE['replace-lost-nodes']['schedule'])")
    base = {k: v for k, v in os.environ.items()
            if k not in ("POTLUCK_REPLICA_BIND_HOST", "POTLUCK_NODE_ADDRESS",
                         "POTLUCK_NODE_LOST_AFTER_SECONDS")}
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**base, "DJANGO_SETTINGS_MODULE": "potluck.settings", **env},
                           timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr[-2000:]
    return shown.stdout.split()


@pytest.mark.parametrize("env,expected", [
    ({}, ["127.0.0.1", "127.0.0.1", "10.0"]),  # one host: loopback
    # Only the address set: the replicas listen there too, or nobody could reach them.
    ({"POTLUCK_NODE_ADDRESS": "10.0.0.11"}, ["10.0.0.11", "10.0.0.11", "10.0"]),
    ({"POTLUCK_NODE_ADDRESS": "agent", "POTLUCK_REPLICA_BIND_HOST": "0.0.0.0"},
     ["0.0.0.0", "agent", "10.0"]),
    ({"POTLUCK_NODE_LOST_AFTER_SECONDS": "4"}, ["127.0.0.1", "127.0.0.1", "2.0"]),
    ({"POTLUCK_NODE_LOST_AFTER_SECONDS": "1"}, ["127.0.0.1", "127.0.0.1", "1.0"]),
])
def test_settings_for_many_hosts(env, expected):
    assert settings_in_a_process(**env) == expected


@pytest.mark.django_db
def test_replicas_are_placed_at_their_nodes_address(make_node, make_model, settings):
    from potluck.serving import services
    from potluck.serving.scheduler import schedule

    settings.NODE_ADDRESS = "10.0.0.11"
    make_node("host-a")
    settings.NODE_ADDRESS = "10.0.0.12"
    make_node("host-b")
    deployment = services.create_deployment(make_model(), 2, {}, None, organization=None,
                                            operator=True)
    schedule()
    assert sorted(deployment.replica_set.values_list("node__name", "host")) == [
        ("host-a", "10.0.0.11"), ("host-b", "10.0.0.12")]
