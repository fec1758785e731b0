# SPDX-License-Identifier: Apache-2.0
"""``potluck up``: one supervisor for the embedded default.

It starts PostgreSQL and Redis (unless configured), migrates, then runs the node
agent, Celery beat and the web server as children in their own process groups, and
on Ctrl-C or SIGTERM stops them in reverse order, leaving no process behind.

Every process it starts is watched: one that dies (PostgreSQL and Redis included) is
started again after a back-off, with a line in the output saying what died and when it
comes back (``potluck.runtime.restarts``: 1 s, 2 s, 4 s ...; the 5th death of one child
within 5 minutes stops everything). The others ride the outage out on their own: the
gateway degrades (``potluck.gateway``), Celery reconnects to its broker, Django
reconnects to its database. A restarted node agent adopts the vLLM replicas that kept
serving while it was away.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from potluck.runtime.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServiceError
from potluck.runtime.restarts import RestartPolicy
from potluck.runtime.services import StateServices, start_state_services

log = logging.getLogger(__name__)
STOP_TIMEOUT_SECONDS = 30


class StartupError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    env: dict[str, str] | None = None
    logs: Path | None = None
    restarts: RestartPolicy = field(default_factory=RestartPolicy)
    restart_at: float | None = None  # monotonic; set while it waits for its restart

    def start(self, env: dict[str, str], logs: Path, note: str = "") -> None:
        self.env, self.logs = env, logs
        self.log = (logs / f"{self.name}.log").open("ab")
        if note:  # where a restart begins, for whoever reads the log
            self.log.write(f"==== potluck up: {note} at {time.strftime('%F %T')} ====\n"
                           .encode())
            self.log.flush()
        self.process = subprocess.Popen(
            self.argv, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        # Its pid for operators and drills (Celery and gunicorn rewrite their titles).
        self.pidfile.write_text(f"{self.process.pid}\n")

    @property
    def pidfile(self) -> Path:
        assert self.logs is not None
        return self.logs.parent / "run" / f"{self.name}.pid"

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.logs / f"{self.name}.log" if self.logs is not None else None

    def death(self) -> str | None:
        """How it died (``exited with code 1``, ``was killed by SIGKILL``), or None."""
        code = self.exited()
        return None if code is None else _describe_exit(code)

    def restart(self) -> None:
        """Clear what is left of its process group (gunicorn workers of a dead master),
        then start it again with the same environment."""
        assert self.env is not None and self.logs is not None
        self.stop(timeout=5)
        self.start(self.env, self.logs, note=f"{self.name} started again")

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """TERM the whole process group, then KILL whatever is left of it."""
        if self.process is None:
            return
        pgid = self.process.pid
        family = _group_members(pgid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        _, alive = psutil.wait_procs(family, timeout=max(1.0, timeout / 3))
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.log is not None:
            self.log.close()
        if self.logs is not None:
            self.pidfile.unlink(missing_ok=True)


@dataclass
class ServiceChild:
    """An embedded PostgreSQL or Redis, watched like a child: it is a daemon (PostgreSQL)
    or a child in its own session (Redis), started again by the class that started it."""

    name: str
    service: EmbeddedPostgres | EmbeddedRedis
    restarts: RestartPolicy = field(default_factory=RestartPolicy)
    restart_at: float | None = None

    @property
    def pid(self) -> int | None:
        if isinstance(self.service, EmbeddedPostgres):
            return self.service.postmaster_pid()
        return self.service.pid

    @property
    def log_path(self) -> Path:
        return self.service.logfile

    def death(self) -> str | None:
        return None if self.service.alive() else "is not running"

    def restart(self) -> None:
        """Start it again on the same data and socket (raises EmbeddedServiceError)."""
        self.service.start()


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _group_lives(leader: psutil.Process) -> bool:
    """The group that ``leader`` started still has members (its leader, or processes it
    left, e.g. vLLM's engine cores; a pid reused since then is not the same group)."""
    if leader.is_running():
        return True
    born = leader.create_time()  # remembered by psutil when the leader was seen
    for member in _group_members(leader.pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            if member.create_time() >= born:
                return True
    return False


def _own_groups(pid: int) -> list[int]:
    """Process groups led by descendants of ``pid`` (the servers it started in new sessions)."""
    try:
        descendants = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    groups = []
    for proc in descendants:
        with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
            if os.getpgid(proc.pid) == proc.pid:
                groups.append(proc.pid)
    return groups


class DataDirLock:
    """One supervisor per data dir: a second ``potluck up`` is refused, not doubled."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "run" / "up.lock"
        self.handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StartupError(f"potluck is already running on {self.path.parent.parent} "
                               f"(pid {holder}); stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def _become_subreaper() -> None:
    """Adopt our descendants' orphans (Linux ``PR_SET_CHILD_SUBREAPER``): the postmaster
    that ``pg_ctl`` leaves behind, and replicas that outlive their agent, become children
    of `up`, which reaps them when they die (where PID 1 may not, e.g. in a container)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_CHILD_SUBREAPER) failed: %s",
                    os.strerror(ctypes.get_errno()))


def _clock() -> str:
    return time.strftime("%H:%M:%S")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Supervisor:
    def __init__(self, data_dir: Path, host: str, port: int, web_workers: int,
                 say: Callable[[str], None] = print) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.web_workers = web_workers
        self.say = say
        self.lock = DataDirLock(data_dir)
        self.services: StateServices | None = None
        self.children: list[Child] = []
        self.service_children: list[ServiceChild] = []
        self.child_env: dict[str, str] | None = None
        self.stopping = False
        # Replicas (process-group leaders) that any agent of this run started: a
        # restarted agent adopts them, but they are no descendants of it.
        self.replica_groups: dict[int, psutil.Process] = {}
        self._replicas_seen_at = 0.0

    @property
    def base_url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{shown}:{self.port}"

    def _prepare_database(self, env: dict[str, str]) -> str | None:
        """Migrate and create the first admin; returns the admin password on first start."""
        done = subprocess.run(
            [sys.executable, "-m", "potluck", "bootstrap"], env=env, capture_output=True,
            text=True, timeout=600, check=False,
        )
        if done.returncode != 0:
            raise StartupError(f"migration failed:\n{done.stderr.strip()[-2000:]}")
        lines = done.stdout.strip().splitlines()
        password = lines[-1].removeprefix("password:") if lines and lines[-1].startswith(
            "password:") else None
        return password

    def _provision_demo(self, env: dict[str, str]) -> None:
        """Build (first start only, a few minutes, with a progress bar) and deploy the demo."""
        if env.get("POTLUCK_DEMO_MODEL", "on").lower() in ("0", "off", "false", "no"):
            return
        self.say("demo model: checking (the first start builds it here, no download)")
        done = subprocess.run([sys.executable, "-m", "potluck", "demo-provision"], env=env,
                              stdout=subprocess.PIPE, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            raise StartupError("the demo model could not be built or deployed (see above); "
                               "set POTLUCK_DEMO_MODEL=off to start without it")
        lines = done.stdout.strip().splitlines()
        self.say(lines[-1] if lines else "demo model: ready")

    def _children(self) -> list[Child]:
        py = sys.executable
        schedule = self.data_dir / "run" / "celerybeat-schedule"
        return [
            Child("agent", [py, "-m", "potluck", "agent", "--control"]),
            Child("beat", [py, "-m", "celery", "-A", "potluck.celery_app:app", "beat",
                           "-s", str(schedule), "--loglevel", "INFO"]),
            Child("web", [py, "-m", "gunicorn", "-c", "python:potluck.gunicorn_conf",
                          "potluck.asgi:application"]),
        ]

    def _wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping:
                raise StartupError("interrupted while starting")
            for child in self.children:
                if child.exited() is not None:
                    raise StartupError(f"{child.name} exited during start-up with code "
                                       f"{child.exited()}; see "
                                       f"{self.data_dir / 'logs' / (child.name + '.log')}")
            if _http_ok(self.base_url + "/readyz"):
                return
            time.sleep(0.25)
        raise StartupError(f"not ready after {timeout:.0f}s; see {self.data_dir / 'logs'}")

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.lock.acquire()
        _become_subreaper()
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            self.say(f"data dir: {self.data_dir}")
            self.services = start_state_services(self.data_dir)
            env = {**os.environ, **self.services.environment(),
                   "POTLUCK_BIND": f"{self.host}:{self.port}",
                   "POTLUCK_WEB_WORKERS": str(self.web_workers)}
            self.services.publish()
            self.service_children = [
                ServiceChild("postgres" if isinstance(svc, EmbeddedPostgres) else "redis", svc)
                for svc in self.services.embedded]
            self.child_env = env
            self.say("database and redis: up; migrating")
            password = self._prepare_database(env)
            self._provision_demo(env)
            for child in self._children():
                child.start(env, logs)
                self.children.append(child)
            self._wait_ready()
            self._banner(password)
            return self._watch()
        except (StartupError, EmbeddedServiceError) as exc:
            self.say(f"error: {exc}")
            return 1
        finally:
            self.shutdown()

    def _banner(self, password: str | None) -> None:
        self.say("")
        self.say(f"Potluck is up: {self.base_url}/")
        if password:
            self.say(f"first admin login: admin / {password}  (shown once; change it with "
                     "`potluck users set-password admin`)")
        else:
            self.say("sign in as admin (forgot the password? `potluck users set-password admin`)")
        self.say(f"OpenAI-compatible API: {self.base_url}/v1  (e.g. model potluck-demo)")
        self.say("create an API key: potluck keys create --org default --name mykey")
        self.say(f"logs: {self.data_dir / 'logs'}   stop: Ctrl-C")

    def _watch(self) -> int:
        """Restart whatever dies until Ctrl-C/SIGTERM (0) or a child that keeps dying (1)."""
        while not self.stopping:
            for unit in [*self.service_children, *self.children]:
                if self.stopping:
                    break
                if not self._tend(unit):
                    return 1
            self._remember_replicas()
            self._reap_orphans()
            time.sleep(0.5)
        return 0

    def _reap_all(self, timeout: float = 10) -> None:
        """After the stop: reap the adopted orphans as they exit (leave no zombie)."""
        deadline = time.monotonic() + timeout
        while psutil.Process().children() and time.monotonic() < deadline:
            self._reap_orphans()
            time.sleep(0.1)

    def _reap_orphans(self) -> None:
        """Reap the orphans `up` adopted (a killed postmaster, replicas or gunicorn workers
        whose parent died) once they exit, so that none lingers as a zombie that still
        looks alive (``pg_ctl`` would take a zombie postmaster for a running server).
        Children that a ``Popen`` of ours owns are left to it."""
        own = {unit.pid for unit in self.children if unit.process is not None}
        own |= {svc.service.process.pid for svc in self.service_children
                if isinstance(svc.service, EmbeddedRedis) and svc.service.process is not None}
        for _ in range(64):
            try:
                found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if found is None or found.si_pid in own:
                return  # nothing has exited, or the next look at that child reaps it
            with contextlib.suppress(ChildProcessError):
                os.waitpid(found.si_pid, os.WNOHANG)

    def _tend(self, unit: Child | ServiceChild) -> bool:
        """Notice a death, or restart when its back-off is over; False: give up."""
        now = time.monotonic()
        if unit.restart_at is None:
            how = unit.death()
            if how is None:
                return True
            return self._plan_restart(unit, f"{unit.name} {how}", now)
        if now < unit.restart_at:
            return True
        unit.restart_at = None
        try:
            unit.restart()
        except Exception as exc:  # whatever a restart raises is one more failed start
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            return self._plan_restart(unit, f"{unit.name} did not start again ({first})",
                                      time.monotonic())
        self.say(f"{_clock()} {unit.name}: started again (pid {unit.pid})")
        return True

    def _plan_restart(self, unit: Child | ServiceChild, what: str, now: float) -> bool:
        delay = unit.restarts.died(now)
        where = f"see {unit.log_path}" if unit.log_path else "no log"
        if delay is None:
            policy = unit.restarts
            self.say(f"error: {_clock()} {what}; it died {policy.limit} times within "
                     f"{policy.window_seconds:.0f}s, so potluck stops ({where})")
            return False
        self.say(f"{_clock()} {what}; restarting it in {delay:.0f}s ({where})")
        unit.restart_at = now + delay
        return True

    def _remember_replicas(self, every: float = 2.0) -> None:
        now = time.monotonic()
        if now - self._replicas_seen_at < every:
            return
        self._replicas_seen_at = now
        for child in self.children:
            if child.name == "agent" and child.process is not None:
                for pgid in _own_groups(child.process.pid):
                    if pgid not in self.replica_groups:
                        with contextlib.suppress(psutil.NoSuchProcess):
                            self.replica_groups[pgid] = psutil.Process(pgid)

    def _stop_replicas(self, agent: Child) -> None:
        """Stop the node's vLLM replicas, which outlive their agent by design, before it.

        The replicas are the process groups that agents of this run started (their
        descendants that lead a group, remembered as they appear, so that those a
        restarted agent adopted count too); whatever of them a failed orderly stop
        leaves is killed as a last resort.
        """
        self._remember_replicas(every=0)
        groups = [pgid for pgid, leader in self.replica_groups.items() if _group_lives(leader)]
        if self.child_env is not None:
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "potluck", "stop-replicas"], env=self.child_env,
                    capture_output=True, text=True, timeout=120, check=False)
                said = (done.stdout if done.returncode == 0 else done.stderr).strip()
                last = said.splitlines()[-1] if said else f"exit code {done.returncode}"
                if done.returncode != 0:
                    self.say(f"error: stopping the replicas failed ({last}); killing them")
                elif not last.startswith("stopped 0"):
                    self.say(last)
            except subprocess.TimeoutExpired:
                self.say("error: stopping the replicas timed out; killing them")
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    def shutdown(self) -> None:
        # Ignore further signals: a second Ctrl-C must not leave half-stopped processes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if self.children or self.services:
            self.say("stopping: " + ", ".join(c.name for c in reversed(self.children))
                     + (", redis, postgres" if self.services and self.services.embedded else ""))
        for child in reversed(self.children):
            if child.name == "agent":
                self._stop_replicas(child)
            child.stop()
        self.children.clear()
        if self.services is not None:
            self.services.unpublish()
            self.services.stop()
            self.services = None
        self.service_children.clear()
        self._reap_all()
        self.lock.release()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
