# SPDX-License-Identifier: Apache-2.0
"""A plug-in (``POTLUCK_PLUGINS=potluck_usage_probe``) that registers usage consumers for
tests that need them inside real worker processes; see ``tests/usage_probe.py``."""
