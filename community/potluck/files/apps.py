# SPDX-License-Identifier: Apache-2.0
from django.apps import AppConfig


class FilesConfig(AppConfig):
    name = "potluck.files"
    label = "files"
    verbose_name = "Files"
    default_auto_field = "django.db.models.BigAutoField"
