# SPDX-License-Identifier: Apache-2.0
from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "potluck.batches"
    label = "batches"
    verbose_name = "Batches"
    default_auto_field = "django.db.models.BigAutoField"
