# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Contribution credits (licence feature ``credits``): merged patches earn compute credits
by rule, in a double-entry ledger; credits pay for usage at list price before Stripe;
a share of enterprise revenue funds a community pool distributed pro rata. See README
"Contribution credits"."""
