# SPDX-License-Identifier: Apache-2.0
"""Registers the bench's three no-op policies (``policies.py``) in the inference core's
policy pipeline (``potluck.extensions.request_policies``) at start-up."""

from __future__ import annotations

from django.apps import AppConfig


class NoopPoliciesConfig(AppConfig):
    name = "noop_policies"
    label = "bench_noop_policies"
    verbose_name = "Bench: no-op policies"

    def ready(self) -> None:
        from noop_policies import policies
        from potluck import extensions

        for key, policy in policies.all_policies():
            extensions.request_policies.register(key, policy, replace=True)
