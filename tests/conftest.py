# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: real PostgreSQL and Redis (started by `make test`), API clients, orgs."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
    # Fail loudly: a run that silently skipped the database would prove nothing.
    sys.exit("tests need real PostgreSQL and Redis: run `make test`, or "
             "`potluck services run -- pytest`, or set DATABASE_URL and REDIS_URL")

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMUNITY_TESTS = REPO_ROOT / "tests" / "community"


def pytest_collection_modifyitems(config, items) -> None:
    """Mark the community edition's tests ``community``, so CI can run its slow ones once:
    in the community-only phase (.ci/run), not also in the full one."""
    for item in items:
        if COMMUNITY_TESTS in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.community)


@pytest.fixture
def redis_conn():
    from potluck.redis_client import get_redis

    conn = get_redis()
    for key in conn.scan_iter(match="potluck:*", count=500):
        conn.delete(key)
    return conn


@pytest.fixture(autouse=True)
def fresh_sign_in_counters() -> None:
    """Failed sign-ins counted in Redis by one test never throttle the next one (every
    test client signs in from 127.0.0.1)."""
    from potluck.redis_client import get_redis

    conn = get_redis()
    keys = list(conn.scan_iter(match="potluck:signin:*", count=500))
    if keys:
        conn.delete(*keys)


@pytest.fixture
def make_org(db) -> Callable[..., object]:
    from potluck.accounts import services

    def make(name: str, owner_email: str | None = None):
        owner = services.get_or_create_user(owner_email) if owner_email else None
        return services.create_organization(name, owner=owner)

    return make


@pytest.fixture
def org(make_org):
    return make_org("Acme", owner_email="owner@acme.test")


@pytest.fixture
def other_org(make_org):
    return make_org("Globex", owner_email="owner@globex.test")


@pytest.fixture
def key_for() -> Callable[..., str]:
    from potluck.accounts import services

    def make(org, scopes: list[str] | None = None, **kwargs) -> str:
        _, secret = services.create_api_key(org, kwargs.pop("name", "test"),
                                            scopes=scopes, **kwargs)
        return secret

    return make


@pytest.fixture
def client_for(key_for) -> Callable[..., object]:
    """An APIClient that authenticates with a fresh key of ``org``."""
    from rest_framework.test import APIClient

    def make(org, scopes: list[str] | None = None):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_for(org, scopes)}")
        return client

    return make


@pytest.fixture
def user_client(db) -> Callable[..., object]:
    """An APIClient signed in (session) as a member of ``org`` with ``role``."""
    from rest_framework.test import APIClient

    from potluck.accounts.models import Membership
    from potluck.accounts.services import get_or_create_user

    def make(org, role: str, email: str | None = None):
        user = get_or_create_user(email or f"{role}@{org.slug}.test")
        Membership.objects.get_or_create(organization=org, user=user, defaults={"role": role})
        client = APIClient()
        client.force_authenticate(user)
        client.user = user
        return client

    return make


@pytest.fixture
def live_env(transactional_db, tmp_path) -> Iterator[dict[str, str]]:
    """Environment for a subprocess that must see this test's database rows."""
    from django.db import connection

    settings = connection.settings_dict
    host = settings["HOST"]
    user, password = settings["USER"] or "postgres", settings["PASSWORD"]
    if host.startswith("/"):
        url = f"postgresql://{user}@/{settings['NAME']}?host={host}"
    else:
        url = (f"postgresql://{user}:{password}@{host}:{settings['PORT'] or 5432}"
               f"/{settings['NAME']}")
    yield {**os.environ, "DATABASE_URL": url, "POTLUCK_DATA_DIR": str(tmp_path / "data"),
           "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """The demo model, built once (60 steps) and cached under .potluck-test/."""
    from live_agent import DEMO_DIR, DEMO_STEPS

    from potluck.demo_model import build_demo_model

    return build_demo_model(DEMO_DIR, steps=DEMO_STEPS, progress=False)


@pytest.fixture
def reaper(live_env) -> Iterator[set[int]]:
    """Process groups to kill after the test: agents, every replica and trainer it recorded,
    and any process working in the test's data dir."""
    from live_agent import group_members, kill_group
    from waiting import wait_for

    groups: set[int] = set()
    yield groups
    import psutil

    from potluck.finetune.models import FineTuningJob
    from potluck.serving.models import Replica

    groups.update(Replica.objects.exclude(pid=None).values_list("pid", flat=True))
    groups.update(FineTuningJob.objects.exclude(pid=None).values_list("pid", flat=True))
    data_dir = live_env["POTLUCK_DATA_DIR"]
    for proc in psutil.process_iter(["pid", "cmdline"]):  # trainers an agent started
        if any(data_dir in arg for arg in proc.info["cmdline"] or []):
            groups.add(proc.pid)
            with contextlib.suppress(psutil.Error):
                proc.kill()
    for pgid in groups:
        kill_group(pgid)
    wait_for(lambda: not group_members(groups), 30, "the test's processes to be gone")


@pytest.fixture
def start_agent(live_env, reaper, tmp_path) -> Callable[..., object]:
    """Starts a real node agent (``--control``) and waits for its first heartbeat."""
    from live_agent import Agent, port_range
    from waiting import wait_for

    from potluck.nodes import services as node_services

    def start(node: str = "test-node", **extra_env: str):
        env = {**live_env, "POTLUCK_NODE_HEARTBEAT_SECONDS": "1",
               "POTLUCK_SERVING_RECONCILE_SECONDS": "1", "POTLUCK_REPLICA_PORTS": port_range(),
               **extra_env}
        agent = Agent(env, tmp_path / f"agent-{node}.log", reaper, node)
        wait_for(lambda: node in node_services.live_node_names(), 60, "the agent's heartbeat")
        return agent

    return start


@pytest.fixture(scope="session")
def python_for_all_users() -> tuple[str, dict[str, str]]:
    """A Python that users other than root can run, and the variables it needs to find
    this environment's packages: (interpreter, env).

    Production installs live in /usr or /opt; this environment's interpreter may live
    under /root (pyenv), which no other user may enter. Then its installation, less its
    own site-packages and tests, is copied once under .potluck-test/ (about 100 MB).
    """
    import shutil
    import sysconfig

    base = Path(sys.base_prefix)
    reachable = all(folder.stat().st_mode & 0o001 for folder in [*base.parents, base])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    # PYTHONPATH entries are not site directories: the editable install's .pth finder in
    # site-packages does not run, so the source folders themselves go on the path.
    sources = [str(REPO_ROOT / "community"), str(REPO_ROOT / "enterprise")]
    # This environment's packages: its site-packages, and folders its .pth files add (CI's
    # community-only venv reaches the installed dependencies through one).
    packages = [sysconfig.get_paths()["purelib"],
                *(p for p in sys.path if p.endswith("-packages") and Path(p).is_dir())]
    env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys([*paths, *sources, *packages]))}
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if reachable:
        return sys.executable, env
    copy = REPO_ROOT / ".potluck-test" / f"python-{sys.version.split()[0]}"
    if not (copy / ".complete").exists():
        shutil.rmtree(copy, ignore_errors=True)
        skip = shutil.ignore_patterns("site-packages", "test", "tests", "idlelib", "tkinter",
                                      "ensurepip", "__pycache__", "*.a")
        shutil.copytree(base / "bin", copy / "bin", symlinks=True)
        shutil.copytree(base / "lib", copy / "lib", symlinks=True, ignore=skip)
        (copy / "lib" / f"python{version}" / "site-packages").mkdir()
        (copy / ".complete").touch()
    for folder in [*copy.parents, copy]:
        if folder.exists() and not folder.stat().st_mode & 0o001:
            folder.chmod(folder.stat().st_mode | 0o001)
    env["LD_LIBRARY_PATH"] = str(copy / "lib")
    return str(copy / "bin" / f"python{version}"), env
