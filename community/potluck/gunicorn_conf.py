# SPDX-License-Identifier: Apache-2.0
"""gunicorn settings for the web process; deploy/gunicorn.conf.py re-exports these."""

from __future__ import annotations

import multiprocessing

from potluck import env

bind = [env.env_str("POTLUCK_BIND") or f"127.0.0.1:{env.env_int('POTLUCK_PORT', 8000)}"]
workers = env.env_int("POTLUCK_WEB_WORKERS", max(1, min(4, multiprocessing.cpu_count())))
worker_class = "uvicorn_worker.UvicornWorker"
# Streams of generated tokens can be long; gunicorn must not kill a busy worker.
timeout = env.env_int("POTLUCK_WEB_TIMEOUT", 600)
graceful_timeout = env.env_int("POTLUCK_WEB_GRACEFUL_TIMEOUT", 30)
keepalive = 5
accesslog = "-"
errorlog = "-"
proc_name = "potluck-web"
