# SPDX-License-Identifier: Apache-2.0
"""How the node agent runs the processes that serve and train tenants' models.

vLLM replicas and fine-tuning trainers are started only through ``start`` and get:

- **only the environment they need**: an allowlist of variable names and prefixes
  (``ENV_NAMES``, ``ENV_PREFIXES``, plus the operator's ``POTLUCK_ENGINE_ENV``), never a
  copy of the agent's environment minus a denylist. Database and broker URLs, the
  secret key, cloud credentials (``AWS_*``, ``GOOGLE_*``, ``AZURE_*``), ``HF_TOKEN`` and
  any variable nobody listed stay with the agent.
- **an unprivileged user** when the agent runs as root (``POTLUCK_ENGINE_USER``):

  - ``auto`` (the default): the system user ``potluck-engine`` (created if missing, as
    the embedded PostgreSQL's ``potluck-pg`` is), provided that user can run this
    Python and import Potluck; if it cannot (the interpreter lives under a private
    home such as ``/root/.pyenv``), engines keep running as root and the agent warns,
    saying why.
  - a user name: that user, or the agent refuses to start.
  - ``off`` (or ``root``): the agent's own user.

  The user gets its own home under the data dir (``engine-home``), search permission
  (never read) on the folders above what it must reach, and ownership of a trainer's
  job folder; files the agent keeps private (the secret key, 0600) stay unreadable to
  it, and so do the embedded PostgreSQL's and Redis's sockets (0700).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import pwd
import stat
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from django.conf import settings

log = logging.getLogger(__name__)

ENGINE_SYSTEM_USER = "potluck-engine"
# Variables a replica or trainer may inherit from the agent, by exact name ...
ENV_NAMES = frozenset({
    "PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
    "LD_LIBRARY_PATH", "LD_PRELOAD", "HF_HOME", "HF_HUB_CACHE", "TRANSFORMERS_CACHE",
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM",
    "PYTORCH_CUDA_ALLOC_CONF", "CUDA_HOME", "CUDA_PATH", "CUDA_DEVICE_ORDER",
})
# ... and by prefix: locale, vLLM's own settings, threading and accelerator runtimes.
ENV_PREFIXES = ("LC_", "VLLM_", "OMP_", "MKL_", "KMP_", "NCCL_", "NVIDIA_", "TORCH_",
                "TORCHINDUCTOR_", "TRITON_", "ROCM_", "HIP_")
# Never passed on, even where a prefix or the operator's list matches.
ENV_NEVER = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY"})
# What the engine user must manage for engines to work: this Python, and Potluck on it.
_PROBE = "import potluck"


@dataclass(frozen=True)
class EngineUser:
    """The unprivileged user engine processes run as, and the home it gets."""

    name: str
    uid: int
    gid: int
    home: Path


def allowed_env_name(name: str) -> bool:
    """Whether the agent's variable ``name`` may reach an engine process."""
    if name in ENV_NEVER:
        return False
    if name in ENV_NAMES or name.startswith(ENV_PREFIXES):
        return True
    patterns = [p.strip() for p in getattr(settings, "ENGINE_ENV_ALLOW", []) if p.strip()]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _allowed_env(user: EngineUser | None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if allowed_env_name(name)}
    # The Hugging Face cache stays where the agent's is, whoever runs the engine.
    env.setdefault("HF_HOME", str(Path(os.path.expanduser("~")) / ".cache" / "huggingface"))
    env["HOME"] = str(user.home) if user is not None else os.environ.get("HOME", "/")
    if user is not None:
        env["USER"] = env["LOGNAME"] = user.name
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def engine_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an engine process: the allowlisted part of the agent's, a home
    (the engine user's own, when there is one), offline Hugging Face, unbuffered output,
    then ``extra`` from the caller (e.g. ``CUDA_VISIBLE_DEVICES``)."""
    env = _allowed_env(engine_user())
    env.update(extra or {})
    return env


def engine_user() -> EngineUser | None:
    """The unprivileged user engine processes run as, or None for the agent's own.

    Raises ``RuntimeError`` when ``POTLUCK_ENGINE_USER`` names a user that cannot be
    used: it does not exist, cannot run this Python, or the agent is not root.
    """
    wanted = (getattr(settings, "ENGINE_USER", "auto") or "").strip()
    return resolve_engine_user(wanted, Path(settings.DATA_DIR), os.geteuid(), sys.executable)


@cache
def resolve_engine_user(wanted: str, data_dir: Path, euid: int,
                        python: str) -> EngineUser | None:
    """``engine_user`` for explicit inputs (cached: the agent decides once)."""
    is_root = euid == 0
    if wanted in ("", "off", "root") or (wanted == "auto" and not is_root):
        if is_root:
            log.warning("vLLM replicas and trainers run as root (POTLUCK_ENGINE_USER=%s)",
                        wanted or "off")
        return None
    auto = wanted == "auto"
    name = ENGINE_SYSTEM_USER if auto else wanted
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if not auto or not is_root:
            raise RuntimeError(f"POTLUCK_ENGINE_USER={name}: no such user") from None
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    if entry.pw_uid == euid or entry.pw_uid == 0:
        return None  # already that user
    if not is_root:
        raise RuntimeError(f"POTLUCK_ENGINE_USER={name} needs the node agent to run as root "
                           "(it switches to that user); set it to 'off' to run engines as "
                           f"{pwd.getpwuid(euid).pw_name}")
    user = EngineUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid,
                      home=data_dir / "engine-home")
    problem = _cannot_run(user, python)
    if problem is not None:
        if not auto:
            raise RuntimeError(f"POTLUCK_ENGINE_USER={name}: {problem}")
        log.warning("vLLM replicas and trainers run as root, not %s: %s (make the Python "
                    "installation readable to that user, or set POTLUCK_ENGINE_USER=off)",
                    name, problem)
        return None
    user.home.mkdir(parents=True, exist_ok=True)
    os.chown(user.home, user.uid, user.gid)
    user.home.chmod(0o700)
    _add_search_permission(user.home.parent)
    log.info("vLLM replicas and trainers run as %s (uid %s)", name, user.uid)
    return user


def _cannot_run(user: EngineUser, python: str) -> str | None:
    """Why ``user`` cannot run ``python`` with Potluck importable, or None if it can."""
    try:
        done = subprocess.run([python, "-c", _PROBE], env=_allowed_env(None), cwd="/",
                              capture_output=True, text=True, timeout=60, check=False,
                              **_identity(user))
    except (OSError, subprocess.SubprocessError) as exc:
        return f"it cannot run {python} ({exc.__class__.__name__}: {exc})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"it cannot run {python} with Potluck ({last})"
    return None


def _identity(user: EngineUser | None) -> dict[str, Any]:
    if user is None:
        return {}
    # Its own group and no supplementary groups: root's would grant it root's files.
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def start(argv: list[str], *, env: dict[str, str], output: IO[bytes], cwd: Path | str,
          user: EngineUser | bool | None = True) -> subprocess.Popen[bytes]:
    """Start an engine process: its own session (it outlives the agent), no stdin,
    ``output`` as stdout and stderr, as the engine user (``user=True``: the configured
    one; an ``EngineUser`` or None: that one, for tests)."""
    who = engine_user() if user is True else user
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=output,
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd,
                            **_identity(who if isinstance(who, EngineUser) else None))


def ensure_traversable(path: Path) -> None:
    """Let the engine user reach ``path``: add search (o+x, never read) permission to each
    folder above and at ``path`` that lacks it (as the embedded PostgreSQL does)."""
    if engine_user() is not None:
        _add_search_permission(path)


def _add_search_permission(path: Path) -> None:
    for folder in [*reversed(Path(path).parents), Path(path)]:
        try:
            mode = folder.stat().st_mode
            if stat.S_ISDIR(mode) and not mode & 0o001:
                folder.chmod(mode | 0o001)
        except OSError:
            continue


def hand_over(folder: Path, user: EngineUser | bool | None = True) -> None:
    """Give the engine user ``folder`` and everything in it (a trainer's job folder: it
    reads its data there and writes checkpoints, events and its result)."""
    who = engine_user() if user is True else user
    if not isinstance(who, EngineUser):
        return
    _add_search_permission(folder)
    for root, dirs, files in os.walk(folder):
        os.chown(root, who.uid, who.gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), who.uid, who.gid, follow_symlinks=False)
