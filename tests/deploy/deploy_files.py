# SPDX-License-Identifier: Apache-2.0
"""What the deploy/ tests share: the repository's paths and the settings Potluck reads."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "potluck"

# Read by libraries, not by Potluck: boto3's credentials file.
LIBRARY_SETTINGS = {"AWS_SHARED_CREDENTIALS_FILE"}

_SETTING = re.compile(r"""["'](POTLUCK_[A-Z0-9_]+|SECRET_KEY|DATABASE_URL|REDIS_URL"""
                      r"""|PROMETHEUS_MULTIPROC_DIR)["']""")


@cache
def settings_read_by_code() -> frozenset[str]:
    """Every environment variable name that Potluck's Python code reads (a quoted literal)."""
    names: set[str] = set()
    for package in (ROOT / "community", ROOT / "enterprise"):
        for path in package.rglob("*.py"):
            names.update(_SETTING.findall(path.read_text()))
    return frozenset(names)


def unknown_settings(names: set[str]) -> set[str]:
    """Names in ``names`` that Potluck does not read; ``NAME_FILE`` counts as ``NAME``
    (potluck.env reads every setting from a file when ``NAME_FILE`` is set)."""
    allowed = settings_read_by_code()
    return {name for name in names
            if name not in LIBRARY_SETTINGS
            and name not in allowed and name.removesuffix("_FILE") not in allowed}


def render_chart(values: dict) -> list[dict]:
    """The chart's manifests for ``values`` (over values.yaml), as Helm renders an install."""
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name="potluck", namespace="ai", is_install=True)
    return [doc for name, text in sorted(files.items()) if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict], kind: str, name: str) -> dict:
    """The one manifest of ``kind`` named ``name``."""
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def unit_values(unit: Path, key: str) -> list[str]:
    """Values of ``key`` in a systemd unit file, in order (a key may repeat)."""
    found = []
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            name, _, value = line.partition("=")
            if name.strip() == key:
                found.append(value.strip())
    return found
