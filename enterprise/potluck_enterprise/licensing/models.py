# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Licence models (owned by the licensing module)."""
