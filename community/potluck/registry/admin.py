# SPDX-License-Identifier: Apache-2.0
from django.contrib import admin

from potluck.registry.models import RegisteredModel


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "organization", "source", "architecture", "context_length"]
    list_filter = ["kind", "source"]
    search_fields = ["name"]
