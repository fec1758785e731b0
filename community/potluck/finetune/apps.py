# SPDX-License-Identifier: Apache-2.0
from django.apps import AppConfig


class FinetuneConfig(AppConfig):
    name = "potluck.finetune"
    label = "finetune"
    verbose_name = "Fine-tuning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from potluck.files import purposes
        from potluck.finetune.dataset import PURPOSE
        from potluck.finetune.services import upload_validator

        purposes.register(PURPOSE, upload_validator)  # the Files API checks datasets
