# SPDX-License-Identifier: Apache-2.0
from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "potluck.usage"
    label = "usage"
    verbose_name = "Usage"
