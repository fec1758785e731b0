# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""With "compliance" licensed, administrative acts across the product land in the audit
log, in the organization's chain (or the installation's): key creation and revocation,
membership and role changes, licence installs, SSO role mappings, compliance profile
edits. Without the feature, nothing is recorded (and the acts still work)."""

from __future__ import annotations

from potluck.accounts import services as accounts
from potluck_enterprise.audit.models import AuditEntry
from potluck_enterprise.compliance import services as compliance


def actions(organization_id=None) -> list[str]:
    return list(AuditEntry.objects.filter(organization_id=organization_id)
                .order_by("seq").values_list("action", flat=True))


def test_administrative_acts_are_recorded_in_their_chains(licensed, org, clock):
    licensed(features=["compliance"])
    assert actions(None) == ["licence.installed"]

    key, secret = accounts.create_api_key(org, "ci", scopes=["inference"])
    accounts.revoke_api_key(key)
    membership = accounts.add_member(org, "dana@acme.test", "member")
    accounts.change_role(membership, "admin", granted_by_owner=True)
    from potluck_enterprise.sso import services as sso

    sso.add_mapping(org, "risk-team", "viewer", granted_by_owner=True)
    spec = compliance.ensure_profile(org, "finance").spec
    spec["disclaimer"] = "Not advice."
    compliance.save_profile(org, "finance", spec)

    assert actions(org.id) == ["api_key.created", "api_key.revoked", "member.added",
                               "member.role_changed", "sso.role_mapping_added",
                               "compliance_profile.created", "compliance_profile.edited"]
    edited = AuditEntry.objects.get(action="compliance_profile.edited")
    assert edited.data == {"version": 2, "changed": ["disclaimer"]}
    role = AuditEntry.objects.get(action="member.role_changed")
    assert role.data == {"from": "member", "to": "admin"}
    created = AuditEntry.objects.get(action="api_key.created")
    assert created.target == f"key:{key.display_prefix}" and secret not in str(created.data)


def test_without_the_feature_nothing_is_recorded(db, org):
    key, _ = accounts.create_api_key(org, "ci")
    accounts.revoke_api_key(key)
    assert AuditEntry.objects.count() == 0
