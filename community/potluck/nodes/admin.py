# SPDX-License-Identifier: Apache-2.0
from django.contrib import admin

from potluck.nodes.models import Node


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "cpu_count", "engine", "last_heartbeat"]
