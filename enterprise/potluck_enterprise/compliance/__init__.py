# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Compliance-tuned variants (licence feature ``compliance``): profiles with guardrails,
a fine-tuning recipe and an evaluation gate, served as variants of a base model."""
