# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The licence store: sells and issues enterprise licences (the vendor's installation only).

On wherever the issuer's private key file is configured (``POTLUCK_STORE_ISSUER_KEY_FILE``);
everywhere else its pages and endpoints are "not found". See README.md beside this file.
"""
