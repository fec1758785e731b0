# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Profiles through /api/compliance: members read them (built-ins included), a compliance
officer (an admin) edits them with the spec validated field by field, each edit is a new
version; another organization sees none of it; without the licence every endpoint is
403."""

from __future__ import annotations


def test_officers_edit_members_read_others_see_nothing(compliance_on, org, other_org,
                                                        user_client):
    officer = user_client(org, "admin")
    member = user_client(org, "member")
    answer = member.get("/api/compliance/profiles")
    assert answer.status_code == 200, answer.content
    listed = answer.json()["data"]
    assert {p["key"] for p in listed} >= {"finance", "healthcare"}
    finance = member.get("/api/compliance/profiles/finance").json()
    assert finance["builtin"] is True and finance["spec"]["detectors"]["CARD"] == {
        "request": "redact", "response": "mask"}

    spec = finance["spec"]
    spec["detectors"]["CARD"] = "nonsense"
    bad = officer.put("/api/compliance/profiles/finance", {"spec": spec}, format="json")
    assert bad.status_code == 400
    assert "spec.detectors.CARD.request" in bad.content.decode()

    spec["detectors"]["CARD"] = {"request": "block", "response": "mask"}
    saved = officer.put("/api/compliance/profiles/finance",
                        {"spec": spec, "based_on": "finance"}, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["version"] == 1 and saved.json()["builtin"] is False
    spec["disclaimer"] = "Not advice."
    assert officer.put("/api/compliance/profiles/finance", {"spec": spec},
                       format="json").json()["version"] == 2
    assert member.put("/api/compliance/profiles/finance", {"spec": spec},
                      format="json").status_code == 403

    theirs = user_client(other_org, "admin")
    assert theirs.get("/api/compliance/profiles/finance").json()["builtin"] is True
    assert theirs.get("/api/compliance/variants").json()["data"] == []
    assert officer.get("/api/audit/entries").json()["size"] >= 2
    assert member.get("/api/audit/entries").status_code == 403


def test_everything_is_403_without_the_licence(db, org, user_client):
    officer = user_client(org, "admin")
    for path in ("/api/compliance/profiles", "/api/compliance/variants",
                 "/api/audit/entries", "/api/audit/export"):
        answer = officer.get(path)
        assert answer.status_code == 403 and "compliance" in answer.content.decode()
