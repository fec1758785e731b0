# SPDX-License-Identifier: Apache-2.0
"""Closed-loop load with wrk: POST a chat completion, figures read back as JSON."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {auth}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p90_us\\":%d," ..
    "\\"p99_us\\":%d,\\"p999_us\\":%d,\\"mean_us\\":%.1f,\\"max_us\\":%d," ..
    "\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float
    errors: int  # socket errors + non-2xx/3xx answers
    error_detail: dict[str, int]
    server_cpu_s: float | None = None  # CPU the server's process tree used meanwhile

    @property
    def server_cpu_us_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string for these contents


def write_script(path: Path, body: bytes, api_key: str) -> Path:
    path.write_text(_SCRIPT.format(body=_lua_string(body.decode()),
                                   auth=_lua_string(f"Bearer {api_key}")))
    return path


def run(binary: str, url: str, script: Path, *, connections: int, seconds: int,
        log: Path) -> WrkResult:
    cmd = [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
           "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}\n")
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1500:]}"
                           f"{done.stderr[-1500:]}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    seconds_run = data["duration_us"] / 1e6
    detail = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return WrkResult(
        requests=data["requests"], seconds=seconds_run, rps=data["requests"] / seconds_run,
        p50_ms=data["p50_us"] / 1e3, p90_ms=data["p90_us"] / 1e3, p99_ms=data["p99_us"] / 1e3,
        p999_ms=data["p999_us"] / 1e3, mean_ms=data["mean_us"] / 1e3,
        max_ms=data["max_us"] / 1e3, errors=sum(detail.values()), error_detail=detail)
