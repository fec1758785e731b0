# SPDX-License-Identifier: Apache-2.0
"""The one mechanism that scopes data to an organization.

Every org-owned model uses ``OrgScopedQuerySet``; every management API view reads
through ``potluck.accounts.api_base.OrgScopedViewSet``, which calls ``for_org`` with the
caller's organization. Views never filter by organization themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from django.db import models

if TYPE_CHECKING:
    from potluck.accounts.models import Organization


class OrgScopedQuerySet(models.QuerySet):
    # The field that points at the owning organization; a model may override it.
    org_field = "organization"

    def for_org(self, organization: Organization) -> Self:
        """Rows the organization may see. Models with shared rows override this."""
        return self.filter(**{self.org_field: organization})


class OrgOwnedModel(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )

    objects: Any = OrgScopedQuerySet.as_manager()

    class Meta:
        abstract = True
