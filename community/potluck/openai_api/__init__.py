# SPDX-License-Identifier: Apache-2.0
"""The base of the Django views that speak OpenAI's shapes under /v1 (files, fine-tuning
jobs, batches): authentication, tenancy, errors and lists (``base``), and request checks
they share (``validation``). Their routes are mounted by ``potluck.api.v1_urls``.

Inference (/v1/chat/completions, ...) stays in the lean gateway.
"""
