# SPDX-License-Identifier: Apache-2.0
"""README's "Scaling out": every setting it names is one Potluck reads, and every file of
deploy/ it points to exists."""

from __future__ import annotations

import re

import pytest
from deploy_files import ROOT, unknown_settings


@pytest.fixture(scope="module")
def guide() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Scaling out\n(.*?)^## ", readme, re.M | re.S)
    assert match, "README.md has no 'Scaling out' section"
    return match.group(1)


def test_every_setting_the_guide_names_is_one_potluck_reads(guide):
    names = set(re.findall(r"\b((?:POTLUCK|SECRET|DATABASE|REDIS)_[A-Z0-9_]*[A-Z0-9])\b",
                           guide))
    # Families written as a prefix (POTLUCK_S3_*) or a suffix (`_TPM`) are not names.
    names = {n for n in names if not n.endswith("_")}
    assert {"SECRET_KEY", "DATABASE_URL", "POTLUCK_NODE_ADDRESS",
            "POTLUCK_REPLICA_BIND_HOST"} <= names
    assert unknown_settings(names) == set()


def test_every_deploy_file_the_guide_points_to_exists(guide):
    paths = set(re.findall(r"(?<![\w/])deploy/[\w./*-]*[\w/*]", guide))
    assert "deploy/helm/potluck/values-gpu.yaml" in paths
    missing = sorted(p for p in paths if not list(ROOT.glob(p)))
    assert missing == []
