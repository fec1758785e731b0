# SPDX-License-Identifier: Apache-2.0
from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "potluck.nodes"
    label = "nodes"
    verbose_name = "Nodes"
