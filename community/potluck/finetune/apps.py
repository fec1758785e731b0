# SPDX-License-Identifier: Apache-2.0
from django.apps import AppConfig


class FinetuneConfig(AppConfig):
    name = "potluck.finetune"
    label = "finetune"
    verbose_name = "Fine-tuning"
    default_auto_field = "django.db.models.BigAutoField"
