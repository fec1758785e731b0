# SPDX-License-Identifier: Apache-2.0
"""Rules of the repository itself: licence headers and a public API schema."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", ".git", "node_modules", ".potluck", ".potluck-test", "__pycache__", "dist",
             "build"}


def source_files() -> list[Path]:
    found = []
    for pattern in ("*.py", "*.html", "*.ts", "*.tsx"):
        for path in ROOT.rglob(pattern):
            if not SKIP_DIRS.intersection(path.relative_to(ROOT).parts) and not any(
                    part.startswith(".venv") for part in path.parts):
                found.append(path)
    return found


def test_every_source_file_names_its_licence_in_its_first_lines():
    missing = [str(p.relative_to(ROOT)) for p in source_files()
               if "SPDX-License-Identifier:" not in "".join(p.read_text().splitlines(True)[:3])]
    assert missing == []


def test_enterprise_files_carry_the_enterprise_licence():
    wrong = [str(p.relative_to(ROOT)) for p in (ROOT / "enterprise").rglob("*.py")
             if "LicenseRef-Potluck-Enterprise" not in p.read_text().splitlines()[0]]
    assert wrong == []


@pytest.mark.django_db
def test_the_openapi_schema_is_served_and_lists_the_management_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/keys", "/api/models", "/api/members", "/api/orgs", "/api/me"):
        assert any(p.rstrip("/") == path for p in schema["paths"]), path


@pytest.mark.django_db
def test_migrations_match_the_models():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
