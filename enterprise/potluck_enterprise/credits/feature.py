# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The "credits" feature switch: the licence gate calls enable() when a licence grants it
and disable() when it no longer does. Disabling keeps the ledger and every grant; only
the hooks go (no credit payments, no refusals, no revenue share).

Credits are spent through billing's pricing (``billing.payers``): without "billing" in
the licence nothing is priced, so nothing is debited (earning, the ledger and the pool
still work).
"""

from __future__ import annotations

from potluck import extensions

FEATURE_KEY = "credits"
POLICY_KEY = "credits"
REFRESHER_KEY = "credits"
SINK_KEY = "credits-revenue-share"
PANELS = (
    extensions.ConsolePanel(key="credits", title="Credits", api_path="/api/credits/wallet",
                            order=350, description="Your contribution credits: balance, "
                            "vesting, history, linked accounts and how to earn."),
)


def enable() -> None:
    from potluck_enterprise.billing.payers import PAYERS
    from potluck_enterprise.credits.policy import CreditPolicy, refresh
    from potluck_enterprise.credits.revenue import revenue_sink
    from potluck_enterprise.credits.spending import PAYER_NAME, CreditPayer

    extensions.request_policies.register(POLICY_KEY, CreditPolicy(), replace=True)
    extensions.refreshers.register(REFRESHER_KEY, refresh, replace=True)
    extensions.revenue_sinks.register(SINK_KEY, revenue_sink, replace=True)
    PAYERS.register(PAYER_NAME, CreditPayer(), replace=True)
    for panel in PANELS:
        extensions.console_panels.register(panel.key, panel, replace=True)


def disable() -> None:
    from potluck_enterprise.billing.payers import PAYERS
    from potluck_enterprise.credits.spending import PAYER_NAME

    extensions.request_policies.unregister(POLICY_KEY)
    extensions.refreshers.unregister(REFRESHER_KEY)
    extensions.revenue_sinks.unregister(SINK_KEY)
    PAYERS.unregister(PAYER_NAME)
    for panel in PANELS:
        extensions.console_panels.unregister(panel.key)
