# SPDX-License-Identifier: Apache-2.0
"""Nodes are shared infrastructure: every signed-in caller may read them, none may edit."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, serializers, viewsets

from potluck.nodes.models import Node


class NodeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Node
        fields = ["name", "queue", "hostname", "state", "cpu_count", "cpu_isa", "memory_bytes",
                  "gpus", "engine", "started_at", "last_heartbeat"]
        read_only_fields = fields


class NodeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = NodeSerializer
    lookup_field = "name"

    def get_queryset(self) -> QuerySet[Node]:
        return Node.objects.all()
