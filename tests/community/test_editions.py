# SPDX-License-Identifier: Apache-2.0
"""The enterprise app runs only where its package and its extra's libraries are installed;
a community install that carries the package without the extra stays community."""

from __future__ import annotations

import importlib.metadata

from potluck import editions


def test_missing_libraries_are_read_from_the_enterprise_extra(monkeypatch):
    declared = ['django<5.3,>=5.2', 'vllm>=0.11; extra == "gpu"',
                'stripe>=12; extra == "enterprise"',
                "potluck-no-such-library>=1; extra == 'enterprise'"]
    monkeypatch.setattr(importlib.metadata, "requires", lambda dist: declared)
    assert editions.missing_enterprise_requirements() == ["potluck-no-such-library"]
    monkeypatch.setattr(editions, "enterprise_package_present", lambda: True)
    assert editions.enterprise_installed() is False


def test_a_source_tree_without_distribution_metadata_checks_nothing(monkeypatch):
    def absent(dist: str) -> None:
        raise importlib.metadata.PackageNotFoundError(dist)

    monkeypatch.setattr(importlib.metadata, "requires", absent)
    assert editions.missing_enterprise_requirements() == []
