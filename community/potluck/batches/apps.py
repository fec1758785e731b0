# SPDX-License-Identifier: Apache-2.0
from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "potluck.batches"
    label = "batches"
    verbose_name = "Batches"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from potluck.batches.input import PURPOSE, upload_validator
        from potluck.files import purposes

        purposes.register(PURPOSE, upload_validator)  # the Files API checks batch uploads
