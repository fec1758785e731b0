# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import os

from django.apps import AppConfig


class UsageProbeConfig(AppConfig):
    name = "potluck_usage_probe"
    label = "potluck_usage_probe"

    def ready(self) -> None:
        from potluck import extensions
        from potluck_usage_probe.consumer import ProbeConsumer

        for name in os.environ.get("POTLUCK_PROBE_CONSUMERS", "probe").split(","):
            extensions.usage_consumers.add(ProbeConsumer(name.strip()), replace=True)
