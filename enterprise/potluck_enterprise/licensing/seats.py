# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The licence's seat limit as a member policy (``potluck.extensions.member_policies``)."""

from __future__ import annotations

from typing import Any

from potluck_enterprise.licensing import services


class SeatPolicy:
    """Warns when a new member goes past the licensed seats; refuses past the margin.

    Registered whenever the enterprise app is installed; without a licence in force it
    lets everyone in (the community edition has no seat limit).
    """

    def before_add(self, organization: Any, email: str, role: str) -> None:
        services.check_seat_for(email)
