# SPDX-License-Identifier: Apache-2.0
"""One vLLM OpenAI server as an operating-system process: start, probe, recognise.

Each server is the leader of its own process group and session, so it outlives the node
agent that started it (agents restart; replicas keep serving) and so that one signal
to the group reaches the engine processes vLLM spawns (``potluck.child_processes``
signals and stops groups). The loop that decides what to start and stop is
``potluck.serving.reconcile``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import psutil
from django.conf import settings
from django.utils import timezone

from potluck.nodes import isolation
from potluck.registry.models import Source
from potluck.serving import cpu_share
from potluck.serving.engine_args import engine_argv
from potluck.serving.models import Replica

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
LOG_TAIL_LINES = 40
PROBE_TIMEOUT_SECONDS = 2.0
START_MARKER = "==== potluck: starting replica"


@dataclass(frozen=True)
class LaunchSpec:
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    model_path: str = ""  # a local model's folder, made reachable for the engine user


def log_path(replica: Replica) -> Path:
    return settings.DATA_DIR / "logs" / "replicas" / f"{replica.id}.log"


def server_argv(replica: Replica, *, host: str, port: int, cpu_only: bool) -> list[str]:
    """The server's command line: Potluck's own flags (model, name, address), the
    deployment's allowlisted engine options, then the operator's free-form arguments."""
    deployment = replica.deployment
    model = deployment.model
    if model.source == Source.HUGGINGFACE:
        where = [model.repo_id, "--revision", model.revision or "main"]
    else:
        where = [model.path]
    argv = [sys.executable, "-m", API_SERVER_MODULE, "--model", *where,
            "--served-model-name", model.name, "--host", host, "--port", str(port)]
    return (argv + engine_argv(deployment.engine_args or {}, cpu_only=cpu_only)
            + list(deployment.operator_args or []))


def server_env(replica: Replica, *, cpu_only: bool) -> dict[str, str]:
    """Only the environment vLLM needs (``potluck.nodes.isolation``), and its devices."""
    extra: dict[str, str] = {}
    if cpu_only:
        extra["VLLM_CPU_KVCACHE_SPACE"] = os.environ.get(
            "VLLM_CPU_KVCACHE_SPACE", str(settings.SERVING_CPU_KVCACHE_GIB))
    else:
        extra["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in replica.gpu_ids)
    if replica.deployment.engine_args.get("enable_lora"):
        extra["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    return isolation.engine_env(extra)


def launch(spec: LaunchSpec, replica_id: object) -> subprocess.Popen[bytes]:
    """Start the server in a new session, as the engine user (``potluck.nodes.isolation``),
    its output appended to the replica's log (opened here, by the agent), at the node's
    CPU share for replicas (``cpu_share.replica_share``)."""
    share = cpu_share.replica_share()  # a bad setting fails here, before anything starts
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    if spec.model_path:
        isolation.ensure_traversable(Path(spec.model_path))
    with spec.log_path.open("ab") as log:
        log.write(f"{START_MARKER} {replica_id} at {timezone.now().isoformat()} ====\n"
                  .encode())
        log.flush()
        process = isolation.start(spec.argv, env=spec.env, output=log, cwd="/")
    cpu_share.apply_configured(process.pid, share)
    return process


def port_range() -> range:
    low, _, high = (settings.SERVING_REPLICA_PORTS or "8100-8999").partition("-")
    return range(int(low), int(high or low) + 1)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_port(host: str, taken: set[int]) -> int:
    for port in port_range():
        if port not in taken and port_is_free(host, port):
            return port
    raise RuntimeError(f"no free port in {settings.SERVING_REPLICA_PORTS} on {host}")


def find_server(pid: int | None, port: int | None) -> psutil.Process | None:
    """The live vLLM server with this pid serving this port, or None (a reused pid is not)."""
    if not pid or not port:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        argv = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if API_SERVER_MODULE not in argv:
        return None
    try:
        served_port = argv[argv.index("--port") + 1]
    except (ValueError, IndexError):
        return None
    return proc if served_port == str(port) else None


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
            return response.read() if response.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def answers(base_url: str) -> bool:
    """The server is ready: its OpenAI API lists models."""
    return _get(base_url + "/v1/models") is not None


def requests_in_flight(base_url: str) -> float | None:
    """Running plus waiting requests from vLLM's /metrics; None when it cannot be read."""
    body = _get(base_url + "/metrics")
    if body is None:
        return None
    total = 0.0
    for line in body.decode(errors="replace").splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in ("vllm:num_requests_running", "vllm:num_requests_waiting"):
            with contextlib.suppress(ValueError, IndexError):
                total += float(line.rsplit(" ", 1)[1])
    return total


def read_log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the replica's latest run (after its last start marker)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 256 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    run = text.rsplit(START_MARKER, 1)[-1]
    tail: deque[str] = deque(run.splitlines()[1:] if START_MARKER in text else
                             run.splitlines(), maxlen=lines)
    return "\n".join(tail)


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "process exited (exit status unknown: it was started by an earlier agent)"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"process killed by {signal.Signals(-returncode).name}"
        return f"process killed by signal {-returncode}"
    return f"process exited with code {returncode}"
