# SPDX-License-Identifier: Apache-2.0
"""The LiteLLM proxy as a reference, in a throwaway venv under the bench's data dir.

It is never installed into the project's venv. The version is pinned: 1.82.7 and 1.82.8
were malicious uploads (a credential stealer started from a ``.pth`` file, March 2026),
and 1.82.6 is the last release before them. After installing, the venv's ``.pth`` files
are checked: any besides setuptools' own means the bench does not start it.

If it cannot be installed (no registry, a wheel missing), ``install`` returns None with
the reason, and the bench prints one line and goes on without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import procs

VERSION = os.environ.get("BENCH_LITELLM_VERSION", "1.82.6")
_KNOWN_PTH = {"distutils-precedence.pth", "_virtualenv.pth"}
# Nothing of the bench's own configuration is LiteLLM's business (it would try to use
# the bench's database as its own).
_PRIVATE_PREFIXES = ("POTLUCK_", "DATABASE_URL", "REDIS_URL", "DJANGO_", "CELERY_",
                     "SECRET_KEY", "PROMETHEUS_", "BENCH_", "PYTHONPATH")


@dataclass
class LiteLLM:
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def install(work: Path) -> tuple[Path | None, str]:
    """(the venv's litellm executable, "") or (None, why it could not be installed)."""
    venv = work / "litellm-venv"
    exe = venv / "bin" / "litellm"
    log = work / "litellm-install.log"
    try:
        if not exe.exists():
            subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True,
                           capture_output=True, timeout=300)
            with log.open("ab") as handle:
                subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                                "--disable-pip-version-check", f"litellm[proxy]=={VERSION}"],
                               check=True, stdout=handle, stderr=subprocess.STDOUT,
                               timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        return None, (f"pip install litellm[proxy]=={VERSION} failed ({type(exc).__name__}; "
                      f"see {log})")
    unexpected = sorted(p.name for p in venv.glob("lib/python*/site-packages/*.pth")
                        if p.name not in _KNOWN_PTH)
    if unexpected:
        return None, f"the litellm venv has unexpected start-up hooks {unexpected}; not run"
    return exe, ""


def _base_python() -> str:
    """The interpreter the project's venv was made from (a venv of a venv nests badly)."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return str(candidate) if candidate.exists() else sys.executable


_CONFIG = """\
model_list:
{models}
litellm_settings:
  drop_params: true
  telemetry: false
  turn_off_message_logging: true
"""
_MODEL = """\
  - model_name: {name}
    litellm_params:
      model: openai/{name}
      api_base: {base}/v1
      api_key: bench-no-key
"""


def start(exe: Path, work: Path, upstreams: dict[str, str]) -> LiteLLM:
    """One worker (as Potluck's gateway and the raw forwarder get), no database, no
    master key: LiteLLM's proxy with nothing on but routing. ``upstreams``: model name ->
    base URL."""
    config = work / "litellm.yaml"
    config.write_text(_CONFIG.format(models="".join(
        _MODEL.format(name=name, base=base) for name, base in upstreams.items())))
    port = procs.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
    env.update({"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_TELEMETRY": "False", "DISABLE_ADMIN_UI": "True",
                "PYTHONUNBUFFERED": "1"})
    log = work / "litellm.log"
    process = procs.spawn([str(exe), "--config", str(config), "--host", "127.0.0.1",
                           "--port", str(port), "--num_workers", "1"], log, env)
    proxy = LiteLLM(port, process, log)
    try:
        procs.wait_until(lambda: _ready(proxy.url), 180, "LiteLLM proxy", process, log,
                         interval=1.0)
    except BaseException:
        procs.stop(process)
        raise
    return proxy


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url + "/health/liveliness", timeout=2) as response:
        return response.status == 200
