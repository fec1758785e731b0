# SPDX-License-Identifier: Apache-2.0
"""Registers the bench's three no-op policies into ``potluck.extensions`` at start-up.

Written against today's hook, ``extensions.request_policies`` (synchronous ``before`` /
``after``; no stream hook yet). When the inference core's async policy pipeline lands
(issue 11: on request, on response, a stream transformer, on finish), this ``ready()``
is the one place to port: register the same three through the new API, keeping one of
them a stream transformer that passes every event through unchanged.
"""

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
