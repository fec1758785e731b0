# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""What goes into the audit log: every request to a compliance variant (a pipeline
stage), and administrative acts across the product (an admin-event sink).

A request's entry says who (organization, key or person), the model and variant, when,
how it ended (status, outcome, error code), tokens, which detectors and topic rules
fired with which actions (counts, never values), and SHA-256 hashes of the prompt as the
client sent it and of the answer as the client got it. Content (the prompt as the model
saw it, the answer as delivered, both after redaction) is kept apart only where the
profile retains it.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections

from potluck import extensions
from potluck.inference.context import RequestContext
from potluck.inference.policies import Policy
from potluck_enterprise.audit import services
from potluck_enterprise.compliance.policy import STATE_KEY, RequestRecord, variant_of

log = logging.getLogger(__name__)


class AuditTrail(Policy):
    """Records each request to a compliance variant in its organization's chain.

    Runs in ``on_finish``, which every request reaches exactly once, before the last
    byte of its answer leaves; the insert runs on this process's own database thread.
    A failure to record is logged (without content) and counted; it cannot recall an
    answer already sent.
    """

    name = "compliance-audit"
    order = 50
    fail_closed = True
    failures = 0

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-db")

    async def on_finish(self, ctx: RequestContext) -> None:
        record = ctx.state.get(STATE_KEY)
        if not isinstance(record, RequestRecord):
            info = variant_of(ctx)
            if info is None:
                return
            record = RequestRecord(info)  # refused before the guardrails (e.g. a limit)
        if not record.answer_sha256 and record.answer_sent:
            record.seal_answer()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, _write, ctx, record)
        except Exception:
            AuditTrail.failures += 1
            log.exception("audit: the entry of request %s could not be written",
                          ctx.request_id)


def request_entry(ctx: RequestContext, record: RequestRecord) -> dict[str, object]:
    findings = record.findings.as_dict()
    return {
        "request_id": ctx.request_id, "source": ctx.source, "endpoint": ctx.endpoint_name,
        "model": ctx.model, "variant_id": record.variant.variant_id,
        "variant_stage": record.variant.stage, "profile": record.variant.profile.key,
        "profile_version": record.variant.profile.version, "stream": ctx.stream,
        "status": ctx.status, "outcome": ctx.outcome, "error_code": ctx.error_code or "",
        "prompt_tokens": ctx.prompt_tokens, "completion_tokens": ctx.completion_tokens,
        "detections": findings["actions"], "topics": findings["topics"],
        "blocked": findings["blocked"], "prompt_sha256": record.prompt_sha256,
        "answer_sha256": record.answer_sha256,
    }


def _write(ctx: RequestContext, record: RequestRecord) -> None:
    close_old_connections()
    profile = record.variant.profile
    content = ({"prompt": record.prompt_sent, "answer": record.answer_text()}
               if profile.keep_content else None)
    actor = (f"key:{ctx.api_key_id}" if ctx.api_key_id else
             f"user:{ctx.user_id}" if ctx.user_id else "")
    services.append(organization_id=ctx.organization_id, kind="request",
                    action="inference.request", actor=actor, target=ctx.model,
                    data=request_entry(ctx, record), content=content,
                    retention_days=profile.retention_days)


def record_admin_event(event: extensions.AdminEvent) -> None:
    """The admin-event sink: one entry in the organization's chain (or the installation's),
    in the transaction of the act itself."""
    services.append(organization_id=event.organization_id, kind="admin",
                    action=event.action, actor=event.actor, target=event.target,
                    data=event.details)
