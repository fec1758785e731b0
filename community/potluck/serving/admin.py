# SPDX-License-Identifier: Apache-2.0
from django.contrib import admin

from potluck.serving.models import Deployment, Replica


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["model", "organization", "replicas", "state", "created_at"]
    list_filter = ["state"]


@admin.register(Replica)
class ReplicaAdmin(admin.ModelAdmin):
    list_display = ["id", "deployment", "node", "port", "pid", "state", "restarts", "started_at"]
    list_filter = ["state", "node"]
