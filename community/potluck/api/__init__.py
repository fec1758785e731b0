# SPDX-License-Identifier: Apache-2.0
"""The HTTP APIs' routes, assembled from the apps: ``urls`` (/api, the management API)
and ``v1_urls`` (the Django half of /v1: files, fine-tuning jobs, batches).

It sits at the top: every app owns its views, this package only mounts them. The
base classes the views build on live below the apps (``potluck.accounts.api_base``,
``potluck.openai_api.base``).
"""
