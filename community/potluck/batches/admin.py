# SPDX-License-Identifier: Apache-2.0
from django.contrib import admin

from potluck.batches.models import Batch


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "endpoint", "status", "request_total",
                    "request_completed", "request_failed", "created_at"]
    list_filter = ["status", "endpoint"]
    readonly_fields = ["lease_owner", "lease_expires_at"]
