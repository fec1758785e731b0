# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The enterprise app's models, one module per feature."""

from potluck_enterprise.audit.models import *  # noqa: F403
from potluck_enterprise.billing.models import *  # noqa: F403
from potluck_enterprise.compliance.models import *  # noqa: F403
from potluck_enterprise.credits.models import *  # noqa: F403
from potluck_enterprise.licensing.models import *  # noqa: F403
from potluck_enterprise.sso.models import *  # noqa: F403
from potluck_enterprise.store.models import *  # noqa: F403
