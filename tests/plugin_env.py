# SPDX-License-Identifier: Apache-2.0
"""Environment for a Potluck process that installs test plug-ins (tests/plugins)."""

from __future__ import annotations

import os
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent / "plugins"


def plugin_env(*apps: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """``POTLUCK_PLUGINS`` naming ``apps`` and a ``PYTHONPATH`` on which they import."""
    base = dict(os.environ if base is None else base)
    path = [str(PLUGIN_DIR), *filter(None, base.get("PYTHONPATH", "").split(os.pathsep))]
    return {"POTLUCK_PLUGINS": ",".join(apps), "PYTHONPATH": os.pathsep.join(path)}
