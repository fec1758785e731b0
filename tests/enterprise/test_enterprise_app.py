# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The enterprise app installs beside community and, with no licence, registers nothing."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings

from potluck import extensions


def test_the_enterprise_app_is_installed_when_present():
    assert settings.ENTERPRISE_AVAILABLE
    assert apps.is_installed("potluck_enterprise")


def test_without_a_licence_no_enterprise_feature_is_registered():
    assert extensions.features.keys() == []
    assert extensions.console_panels.keys() == []
    assert extensions.request_policies.keys() == []
