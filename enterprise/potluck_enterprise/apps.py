# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
from django.apps import AppConfig


class EnterpriseConfig(AppConfig):
    """Registers enterprise hooks in ``ready()``, one licensed feature at a time.

    No feature exists yet: licence verification comes first (issue: enterprise
    foundation), and each feature registers only while the licence grants it.
    """

    name = "potluck_enterprise"
    label = "potluck_enterprise"
    verbose_name = "Potluck Enterprise"
