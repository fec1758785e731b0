# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The "billing" feature switch: the licence gate calls enable() when a licence grants it
and disable() when it no longer does. Disabling keeps every price, line, budget and
invoice; only the hooks go (no pricing, no budget checks, no Stripe sends)."""

from __future__ import annotations

from potluck import extensions

FEATURE_KEY = "billing"
POLICY_KEY = "billing-budgets"
REFRESHER_KEY = "billing-budgets"
PANEL = extensions.ConsolePanel(
    key="billing", title="Billing", api_path="/api/billing/status", order=300,
    description="Spend by day and model, budgets, invoices and cost vs revenue "
                "(metered billing).")


def enable() -> None:
    from potluck_enterprise.billing.policy import BudgetPolicy, refresh
    from potluck_enterprise.billing.pricing import PricingConsumer

    extensions.request_policies.register(POLICY_KEY, BudgetPolicy(), replace=True)
    extensions.usage_consumers.add(PricingConsumer(), replace=True)
    extensions.refreshers.register(REFRESHER_KEY, refresh, replace=True)
    extensions.console_panels.register(PANEL.key, PANEL, replace=True)


def disable() -> None:
    from potluck_enterprise.billing.pricing import CONSUMER_NAME

    extensions.request_policies.unregister(POLICY_KEY)
    extensions.usage_consumers.unregister(CONSUMER_NAME)
    extensions.refreshers.unregister(REFRESHER_KEY)
    extensions.console_panels.unregister(PANEL.key)
