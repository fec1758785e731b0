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

PANELS = (
    extensions.ConsolePanel(
        key="compliance-profiles", title="Compliance profiles",
        api_path="/api/compliance/profiles", order=500,
        description="Detectors and their actions per direction, topic rules, the "
                    "disclaimer and retention of each profile."),
    extensions.ConsolePanel(
        key="compliance-variants", title="Compliance variants",
        api_path="/api/compliance/variants", order=510,
        description="Variants, their builds and model cards (gate scores, suite, base, "
                    "adapter, failing cases)."),
    extensions.ConsolePanel(
        key="audit-log", title="Audit log", api_path="/api/audit/entries", order=520,
        description="The organization's hash-chained audit log, and its signed "
                    "checkpoints."),
)


def enable() -> None:
    from potluck_enterprise.audit.trail import AuditTrail, record_admin_event
    from potluck_enterprise.compliance.aliases import variant_aliases
    from potluck_enterprise.compliance.policy import Guardrails

    # A variant must never be served without its guardrails: they are in place before a
    # catalogue refresh can see any variant name.
    extensions.request_policies.register(GUARDRAILS_KEY, Guardrails(), replace=True)
    extensions.request_policies.register(AUDIT_KEY, AuditTrail(), replace=True)
    extensions.admin_event_sinks.register(SINK_KEY, record_admin_event, replace=True)
    extensions.model_aliases.register(ALIASES_KEY, variant_aliases, replace=True)
    for panel in PANELS:
        extensions.console_panels.register(panel.key, panel, replace=True)


def disable() -> None:
    # The names first: a catalogue stops serving an alias as soon as its provider is
    # unregistered, so no new request reaches a variant without its guardrails.
    extensions.model_aliases.unregister(ALIASES_KEY)
    for panel in PANELS:
        extensions.console_panels.unregister(panel.key)
    extensions.admin_event_sinks.unregister(SINK_KEY)
    extensions.request_policies.unregister(AUDIT_KEY)
    extensions.request_policies.unregister(GUARDRAILS_KEY)
