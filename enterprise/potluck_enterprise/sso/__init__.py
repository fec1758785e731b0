# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Single sign-on: OIDC and SAML 2.0 per organization, verified domains, enforcement."""

import logging

# pysaml2 loads XML schemas through xmlschema, which logs each load at INFO: noise in
# every command that loads the URL conf.
logging.getLogger("xmlschema").setLevel(logging.WARNING)
