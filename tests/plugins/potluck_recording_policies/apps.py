# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

from django.apps import AppConfig


class RecordingPoliciesConfig(AppConfig):
    name = "potluck_recording_policies"
    label = "recording_policies"

    def ready(self) -> None:
        from potluck_recording_policies import policies

        policies.install()
