# SPDX-License-Identifier: Apache-2.0
"""/v1 routes of this app (OpenAI shapes)."""

from __future__ import annotations

urlpatterns: list = []
