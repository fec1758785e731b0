# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The "sso" feature switch: the licence gate calls enable() when a licence grants it and
disable() when it no longer does (expiry past grace, licence removed). Disabling keeps
every connection, domain and mapping; only the hooks go."""

from __future__ import annotations

from potluck import extensions

FEATURE_KEY = "sso"
POLICY_KEY = "sso-enforcement"
PROVIDERS_KEY = "sso"


def enable() -> None:
    from potluck_enterprise.sso.policy import EnforcedSsoPolicy, login_providers

    extensions.login_policies.register(POLICY_KEY, EnforcedSsoPolicy(), replace=True)
    extensions.login_providers.register(PROVIDERS_KEY, login_providers, replace=True)


def disable() -> None:
    extensions.login_policies.unregister(POLICY_KEY)
    extensions.login_providers.unregister(PROVIDERS_KEY)
