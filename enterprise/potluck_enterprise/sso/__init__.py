# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
