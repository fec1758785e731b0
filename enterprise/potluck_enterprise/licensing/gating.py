# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The gate: enterprise features are on exactly while the installed licence grants them.

Every process (web worker, Celery worker, CLI) keeps its own view. It re-evaluates the
installed licence at most every ``RECHECK_SECONDS``: at the start of each Django request
and each Celery task; from ``potluck.extensions.refreshers``, which /v1 gateway workers
and batch runs call about once a second (so a worker that only ever serves /v1 follows
the licence too); and at once in the process that installs a licence. A change is thus
applied everywhere within ``RECHECK_SECONDS`` plus a second. A
feature switched on is registered in ``potluck.extensions.features`` and its module's
``enable()`` runs; switched off (licence expired past grace, or no longer verifying),
it is unregistered and ``disable()`` runs. Switching off never deletes data.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from datetime import datetime
from types import ModuleType
from typing import Any

from django.db import DatabaseError

from potluck import extensions
from potluck_enterprise.licensing import clock
from potluck_enterprise.licensing.licence import KNOWN_FEATURES, LicenceState

log = logging.getLogger(__name__)

RECHECK_SECONDS = 3.0
# The module that switches each feature (enable()/disable()); None: granted, nothing to switch.
FEATURE_MODULES: dict[str, str | None] = {
    "sso": "potluck_enterprise.sso.feature",
    "billing": "potluck_enterprise.billing.feature",
    "credits": "potluck_enterprise.credits.feature",
    "compliance": "potluck_enterprise.compliance.feature",
}


def _feature_module(key: str) -> ModuleType | None:
    path = FEATURE_MODULES.get(key)
    return importlib.import_module(path) if path else None


class Gate:
    def __init__(self, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._on: frozenset[str] = frozenset()
        self._license_id: str | None = None
        self._checked_at: float | None = None  # time.monotonic() of the last evaluation

    @property
    def enabled(self) -> frozenset[str]:
        return self._on

    def is_stale(self) -> bool:
        checked = self._checked_at
        return checked is None or time.monotonic() - checked >= self.recheck_seconds

    def maybe_refresh(self, **_signal_kwargs: Any) -> None:
        """Re-evaluate if the last look is older than ``recheck_seconds``; never raises."""
        if not self.is_stale() or not self._lock.acquire(blocking=False):
            return  # fresh enough, or another thread is re-evaluating right now
        try:
            if self.is_stale():
                self._refresh_locked(None)
        except DatabaseError as exc:  # an outage (PostgreSQL restarting): no traceback
            log.warning("licence re-evaluation: the database is unreachable (%s); features "
                        "stay as they were", exc.__class__.__name__)
            self._checked_at = time.monotonic()
        except Exception:  # the licence check must never take a request or a task down
            log.exception("licence re-evaluation failed; features stay as they were")
            self._checked_at = time.monotonic()
        finally:
            self._lock.release()

    def refresh(self, now: datetime | None = None, **_signal_kwargs: Any) -> frozenset[str]:
        """Re-evaluate now; returns the features that are on."""
        with self._lock:
            return self._refresh_locked(now)

    def _refresh_locked(self, now: datetime | None) -> frozenset[str]:
        from potluck_enterprise.licensing import services

        _, licence, state, _ = services.licence_in_effect(now or clock.now())
        in_force = licence is not None and LicenceState(state).in_force
        granted = frozenset(f for f in licence.features if f in KNOWN_FEATURES) if (
            licence is not None and in_force) else frozenset()
        self._apply(granted, licence.license_id if licence is not None else None)
        self._checked_at = time.monotonic()
        return self._on

    def _apply(self, granted: frozenset[str], license_id: str | None) -> None:
        for key in sorted(granted - self._on):
            module = _feature_module(key)
            try:
                if module is not None:
                    module.enable()
            except Exception:  # one broken feature must not keep the others off
                log.exception("enabling the licensed feature %r failed", key)
                granted = granted - {key}
                continue
            extensions.features.register(
                key, extensions.Feature(key, KNOWN_FEATURES[key],
                                        {"license_id": license_id,
                                         "switchable": module is not None}),
                replace=True)
            log.info("licensed feature on: %s", key)
        for key in sorted(self._on - granted):
            self._switch_off(key)
        self._on = granted
        self._license_id = license_id

    def _switch_off(self, key: str) -> None:
        extensions.features.unregister(key)
        module = _feature_module(key)
        try:
            if module is not None:
                module.disable()
        except Exception:
            log.exception("disabling the feature %r failed", key)
        log.info("licensed feature off: %s", key)

    def reset(self) -> None:
        """Switch every feature off and forget the last evaluation (tests, shutdown)."""
        with self._lock:
            for key in sorted(self._on):
                self._switch_off(key)
            self._on = frozenset()
            self._license_id = None
            self._checked_at = None


gate = Gate()
_started = False


def start() -> None:
    """Re-evaluate on use in every process: web requests, Celery tasks, installs here."""
    global _started
    if _started:
        return
    from celery.signals import task_prerun
    from django.core.signals import request_started

    from potluck_enterprise.licensing.services import licence_changed

    request_started.connect(gate.maybe_refresh, weak=False, dispatch_uid="licence-gate")
    extensions.refreshers.register("licence-gate", gate.maybe_refresh, replace=True)
    task_prerun.connect(gate.maybe_refresh, weak=False, dispatch_uid="licence-gate")
    licence_changed.connect(gate.refresh, weak=False, dispatch_uid="licence-gate")
    _started = True
