# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""SSO models (owned by the SSO module)."""
