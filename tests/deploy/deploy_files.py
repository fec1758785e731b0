# SPDX-License-Identifier: Apache-2.0
"""What the deploy/ tests share: the repository's paths and the settings Potluck reads."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "potluck"

# Announced by the lead with issue 18 and not yet merged here: /metrics will need this
# bearer token. Drop it from this list once the code reads it.
ANNOUNCED_SETTINGS = {"POTLUCK_METRICS_TOKEN"}
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
    allowed = settings_read_by_code() | ANNOUNCED_SETTINGS
    return {name for name in names
            if name not in LIBRARY_SETTINGS
            and name not in allowed and name.removesuffix("_FILE") not in allowed}
