# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""A test plug-in: makes a Potluck process trust the test's throwaway licence issuer key.

Production reads only the issuer key shipped in code; tests sign licences with a key
pair of their own. This plug-in (which exists only under tests/) points the verifier of
the process it is installed in at ``POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE``.
"""
