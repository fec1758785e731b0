# SPDX-License-Identifier: Apache-2.0
"""The one mechanism that scopes data to an organization.

Every org-owned model uses ``OrgScopedQuerySet``; every management API view reads
through ``potluck.accounts.api_base.OrgScopedViewSet``, which calls ``for_org`` with the
caller's organization, and each app's ``selectors.get_*`` through ``get_in_org``. Views
never filter by organization themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from django.core.exceptions import ValidationError
from django.db import models

from potluck.errors import NotFound

if TYPE_CHECKING:
    from potluck.accounts.models import Organization


class OrgScopedQuerySet(models.QuerySet):
    # The field that points at the owning organization; a model may override it.
    org_field = "organization"

    def for_org(self, organization: Organization) -> Self:
        """Rows the organization may see. Models with shared rows override this."""
        return self.filter(**{self.org_field: organization})

    def get_in_org(self, organization: Organization, pk: Any, *, not_found: str,
                   field: str | None = None) -> Any:
        """The row ``pk`` among those ``organization`` may see (this queryset's filters
        kept). Raises ``NotFound(not_found, field=field)`` otherwise: another
        organization's row, a missing one and a malformed id all read as a 404."""
        try:
            row = self.for_org(organization).filter(pk=pk).first()
        except (ValidationError, ValueError, TypeError):
            row = None
        if row is None:
            raise NotFound(not_found, field=field)
        return row


class OrgOwnedModel(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="+"
    )

    objects: Any = OrgScopedQuerySet.as_manager()

    class Meta:
        abstract = True
