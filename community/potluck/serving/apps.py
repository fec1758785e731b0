# SPDX-License-Identifier: Apache-2.0
from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "potluck.serving"
    label = "serving"
    verbose_name = "Serving"
