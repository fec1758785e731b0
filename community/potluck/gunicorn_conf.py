# SPDX-License-Identifier: Apache-2.0
"""gunicorn settings for the web process; deploy/gunicorn.conf.py re-exports these."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
from pathlib import Path

from potluck import env

bind = [env.env_str("POTLUCK_BIND") or f"127.0.0.1:{env.env_int('POTLUCK_PORT', 8000)}"]
workers = env.env_int("POTLUCK_WEB_WORKERS", max(1, min(4, multiprocessing.cpu_count())))
worker_class = "uvicorn_worker.UvicornWorker"
# Streams of generated tokens can be long; gunicorn must not kill a busy worker.
timeout = env.env_int("POTLUCK_WEB_TIMEOUT", 600)
graceful_timeout = env.env_int("POTLUCK_WEB_GRACEFUL_TIMEOUT", 30)
keepalive = 5
# Access log: "all" requests, "non-inference" (all but the gateway's /v1 inference and
# /metrics, whose every request already leaves a usage record with its id, status and
# latency), or "off". Measured in bench/gateway: at c=32 the line per request was about
# 4% of the gateway worker's samples (py-spy), and without it the worker used 5-11% less
# CPU per request (levers).
ACCESS_LOG = (env.env_str("POTLUCK_WEB_ACCESS_LOG", "non-inference") or "").lower()
if ACCESS_LOG not in ("all", "non-inference", "off"):
    raise ValueError(f"POTLUCK_WEB_ACCESS_LOG must be all, non-inference or off, "
                     f"got {ACCESS_LOG!r}")
accesslog = None if ACCESS_LOG == "off" else "-"
errorlog = "-"
proc_name = "potluck-web"

# Metrics from every worker, aggregated when any of them answers /metrics. Set before
# workers import prometheus_client.
_metrics_dir = Path(env.env_str("PROMETHEUS_MULTIPROC_DIR")
                    or env.data_dir() / "run" / "prometheus")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)


def on_starting(server: object) -> None:
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def post_worker_init(worker: object) -> None:
    """Keep the garbage collector off the request path.

    Measured under load (bench/gateway, c=32): full collections of the objects loaded at
    start-up took 85-100 ms each and freed nothing. Freezing them and collecting the
    young generation less often took the gateway's p99 from 106 ms to 24 ms.
    """
    import gc

    if ACCESS_LOG == "non-inference":
        import logging

        logging.getLogger("uvicorn.access").addFilter(_skip_gateway_requests)
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def _skip_gateway_requests(record: object) -> bool:
    """A ``logging`` filter for uvicorn's access log: drop the gateway's requests.

    uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with args (client, method, path with query
    string, HTTP version, status).
    """
    args = getattr(record, "args", None)
    if not (isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str)):
        return True
    path = args[2].partition("?")[0]
    # Potluck's app is loaded before post_worker_init; another app served with this
    # config (the bench's raw forwarder) gets the plain rule.
    asgi = sys.modules.get("potluck.asgi")
    return not (asgi.routes_to_gateway(path) if asgi is not None else path.startswith("/v1/"))
