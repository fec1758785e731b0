# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The enterprise app installs beside community and, with no licence, grants nothing.

What exists without a licence: the licence panel (so the console can say that none is
installed), /api/license, `potluck license`, and the seat policy (a no-op then).
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.conf import settings

from potluck import extensions
from potluck_enterprise.licensing.gating import gate


def test_the_enterprise_app_is_installed_when_present():
    assert settings.ENTERPRISE_AVAILABLE
    assert apps.is_installed("potluck_enterprise")


def test_without_a_licence_only_the_licence_pieces_are_registered():
    assert extensions.features.keys() == []
    assert extensions.request_policies.keys() == []
    assert extensions.console_panels.keys() == ["licence"]
    assert extensions.console_panels.get("licence").api_path == "/api/license"
    assert extensions.api_routes.get("license") is not None
    assert extensions.cli_commands.get("license") is not None
    assert extensions.member_policies.keys() == ["licence-seats"]


@pytest.mark.django_db
def test_without_a_licence_re_evaluating_switches_nothing_on(client):
    assert gate.refresh() == frozenset()
    client.get("/healthz")  # a request re-evaluates on a stale gate
    assert extensions.features.keys() == []
    assert not extensions.feature_available("sso")
