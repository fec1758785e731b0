# SPDX-License-Identifier: Apache-2.0
"""A bench-only plug-in app: three no-op request policies, one of them a stream transformer.

Named in ``POTLUCK_PLUGINS=noop_policies`` (with ``bench/gateway`` on the path), it makes
the gateway pay for a realistic policy pipeline while changing nothing: see ``apps.py``.
"""
