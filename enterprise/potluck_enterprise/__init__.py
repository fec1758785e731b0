# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Potluck enterprise edition: plugs into ``potluck.extensions`` per licensed feature."""
