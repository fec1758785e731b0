# SPDX-License-Identifier: Apache-2.0
"""Django views that speak OpenAI's shapes under /v1: files, fine-tuning jobs, batches.

Inference (/v1/chat/completions, ...) stays in the lean gateway; the slower,
durable endpoints live here, beside the rest of the management API.
"""
