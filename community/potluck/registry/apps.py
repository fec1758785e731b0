# SPDX-License-Identifier: Apache-2.0
from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "potluck.registry"
    label = "registry"
    verbose_name = "Model registry"
