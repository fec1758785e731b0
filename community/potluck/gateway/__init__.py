# SPDX-License-Identifier: Apache-2.0
"""The OpenAI-compatible gateway (/v1): a lean ASGI path beside Django.

Django's request machinery costs more per call than the whole budget of this path
(see bench/gateway), so /v1 is served by a small ASGI app that shares Django's
models, settings and Redis, and talks to vLLM replicas over one pooled aiohttp
session per worker. Celery is never on this path.
"""
