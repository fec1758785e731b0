# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Metered billing (licence feature ``billing``): a versioned price book, priced lines made
from committed usage, real-time budgets in the gateway, Stripe invoicing behind an adapter
of our own, and cost vs revenue. See README "Metered billing"."""
