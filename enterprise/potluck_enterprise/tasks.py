# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The enterprise app's Celery tasks (found by ``app.autodiscover_tasks()``)."""

from potluck_enterprise.billing.tasks import (  # noqa: F401
    deliver_alerts,
    housekeeping,
    price_fine_tunes,
    send_meter_events,
)
from potluck_enterprise.credits.tasks import (  # noqa: F401
    distribute,
    process_delivery,
    reconcile,
)
