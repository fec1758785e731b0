# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
from __future__ import annotations

import os
from pathlib import Path

from django.apps import AppConfig


class TestIssuerKeyConfig(AppConfig):
    name = "potluck_test_issuer_key"
    label = "potluck_test_issuer_key"

    def ready(self) -> None:
        from potluck_enterprise.licensing import format

        format.ISSUER_PUBLIC_KEY = Path(
            os.environ["POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE"]).read_bytes()
