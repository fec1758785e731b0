# SPDX-License-Identifier: Apache-2.0
"""Facts of the OpenAI protocol that every layer shares: its endpoints and error shape.

Ground floor: this package imports nothing of Potluck's, so the registry, files, batches,
the inference core and the gateway can all build on it.
"""
