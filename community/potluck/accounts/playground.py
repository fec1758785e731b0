# SPDX-License-Identifier: Apache-2.0
"""The console Playground's API key: one per person and organization.

The Playground calls the /v1 gateway as any client does, so it needs an API key. The
console keeps the secret in the browser while it works and asks for a new one only when
it has none or the gateway refused it; asking replaces the person's earlier Playground
key in that organization (revoked in the same transaction), so a person holds one, and
``Usage by key`` and the key list do not fill up with look-alike rows.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from potluck.accounts.models import (
    ROLE_CAPABILITIES,
    ApiKey,
    Capability,
    Membership,
    Organization,
    User,
)
from potluck.accounts.services import create_api_key
from potluck.errors import Forbidden

log = logging.getLogger(__name__)

PLAYGROUND_KEY_NAME = "console playground"
PLAYGROUND_KEY_LIFETIME = timedelta(days=1)
PLAYGROUND_KEY_SCOPES = [Capability.INFERENCE.value]
# A key made here expires this soon after it was made; one a person made by hand with the
# same name and scope but a longer life is theirs, and is never touched.
_MADE_HERE_SLACK = timedelta(minutes=5)


def playground_keys(org: Organization, user: User) -> QuerySet[ApiKey]:
    """The Playground keys ``user`` holds in ``org``: by name, creator, the single
    ``inference`` scope and the one-day life this module gives them."""
    return ApiKey.objects.filter(
        organization=org, created_by=user, name=PLAYGROUND_KEY_NAME,
        scopes=PLAYGROUND_KEY_SCOPES,
        expires_at__lte=F("created_at") + PLAYGROUND_KEY_LIFETIME + _MADE_HERE_SLACK)


def issue_playground_key(org: Organization, user: User) -> tuple[ApiKey, str]:
    """A new inference-only key named "console playground" for ``user`` in ``org``, valid
    for a day, and its secret (returned once, never stored). The person's earlier
    Playground keys in ``org`` are revoked in the same transaction; concurrent calls of
    one person are serialized on their membership row, so at most one stays active.

    Raises ``Forbidden`` when ``user`` is not a member of ``org`` or their role cannot
    run inference.
    """
    with transaction.atomic():
        membership = (Membership.objects.select_for_update()
                      .filter(organization=org, user=user).first())
        if membership is None:
            raise Forbidden("you are not a member of this organization")
        if Capability.INFERENCE not in ROLE_CAPABILITIES[membership.role]:
            raise Forbidden("your role cannot run inference: ask an admin of the organization")
        now = timezone.now()
        replaced = playground_keys(org, user).filter(revoked_at__isnull=True).update(
            revoked_at=now)
        key, secret = create_api_key(org, PLAYGROUND_KEY_NAME, scopes=PLAYGROUND_KEY_SCOPES,
                                     expires_at=now + PLAYGROUND_KEY_LIFETIME,
                                     created_by=user)
    log.info("playground key issued: org=%s prefix=%s replaced=%d", org.slug,
             key.display_prefix, replaced)
    return key, secret
