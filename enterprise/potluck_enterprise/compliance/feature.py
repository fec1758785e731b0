# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The "compliance" feature switch: the licence gate calls enable() when a licence grants
it and disable() when it no longer does. Enabled, the guardrails and audit stages run in
the inference pipeline, variants are served under their names, and administrative acts
go to the audit log. Disabled, variants stop answering (their names are unknown) and
nothing is deleted: profiles, variants, cards and the audit log stay."""

from __future__ import annotations

from potluck import extensions

FEATURE_KEY = "compliance"
GUARDRAILS_KEY = "compliance-guardrails"
AUDIT_KEY = "compliance-audit"
ALIASES_KEY = "compliance-variants"
SINK_KEY = "audit-log"
OFF_KEY = "compliance-off"


def enable() -> None:
    from potluck_enterprise.audit.trail import AuditTrail, record_admin_event
    from potluck_enterprise.compliance.aliases import variant_aliases
    from potluck_enterprise.compliance.policy import Guardrails

    # A variant must never be served without its guardrails: they are in place before a
    # catalogue refresh can see any variant name.
    extensions.request_policies.register(GUARDRAILS_KEY, Guardrails(), replace=True)
    extensions.request_policies.unregister(OFF_KEY)
    extensions.request_policies.register(AUDIT_KEY, AuditTrail(), replace=True)
    extensions.admin_event_sinks.register(SINK_KEY, record_admin_event, replace=True)
    extensions.model_aliases.register(ALIASES_KEY, variant_aliases, replace=True)


def disable() -> None:
    from potluck_enterprise.compliance.policy import VariantsOff

    # Until the next catalogue refresh drops the variant names, requests to them are
    # refused rather than served without guardrails.
    extensions.request_policies.register(OFF_KEY, VariantsOff(), replace=True)
    extensions.model_aliases.unregister(ALIASES_KEY)
    extensions.admin_event_sinks.unregister(SINK_KEY)
    extensions.request_policies.unregister(AUDIT_KEY)
    extensions.request_policies.unregister(GUARDRAILS_KEY)
