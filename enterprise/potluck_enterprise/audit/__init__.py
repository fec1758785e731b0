# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The tamper-evident audit log (licence feature ``compliance``)."""
