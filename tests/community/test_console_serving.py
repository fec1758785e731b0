# SPDX-License-Identifier: Apache-2.0
"""Django serves the built console: its page for "/" and every client-side route, its assets
as static files, and a landing page that says so when the console is not built."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client, override_settings

INDEX = b'<!doctype html><html><head><script type="module" ' \
        b'src="/static/console/assets/app-1a2b.js"></script></head><body>console</body></html>'


@pytest.fixture
def built_console(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_bytes(INDEX)
    (dist / "assets" / "app-1a2b.js").write_text("console.log('potluck');\n")
    return dist


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/models", "/playground", "/fine-tuning", "/usage/",
                                  "/keys", "/members", "/enterprise", "/batches",
                                  "/fine-tuning/ftjob-abc123", "/fine-tuning/ftjob-abc123/"])
def test_the_console_page_is_served_for_each_client_route(built_console: Path, path: str) -> None:
    with override_settings(CONSOLE_DIST_DIR=built_console,
                           STATICFILES_DIRS=[("console", built_console)]):
        response = Client().get(path)
    assert response.status_code == 200
    assert response.content == INDEX
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "no-cache"
    # The console signs in with CSRF: its page hands out the token cookie.
    assert "csrftoken" in response.cookies


@pytest.mark.django_db
def test_the_console_assets_are_static_files(built_console: Path) -> None:
    with override_settings(CONSOLE_DIST_DIR=built_console,
                           STATICFILES_DIRS=[("console", built_console)]):
        response = Client().get("/static/console/assets/app-1a2b.js")
        missing = Client().get("/static/console/assets/gone.js")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"console.log('potluck');\n"
    assert "javascript" in response["Content-Type"]
    assert missing.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/no-such-page", "/models/extra/deep", "/fine-tuning/a/b",
                                  "/favicon.ico"])
def test_an_unknown_page_is_a_404_that_the_console_renders(built_console: Path,
                                                           path: str) -> None:
    with override_settings(CONSOLE_DIST_DIR=built_console,
                           STATICFILES_DIRS=[("console", built_console)]):
        response = Client().get(path)
        post = Client().post(path)
    assert response.status_code == 404
    assert response.content == INDEX  # the console shows its own "page not found"
    assert response["Cache-Control"] == "no-cache"
    assert post.status_code == 404 and post.content != INDEX


@pytest.mark.django_db
def test_the_api_the_gateway_and_static_files_keep_their_own_404s(built_console: Path) -> None:
    with override_settings(CONSOLE_DIST_DIR=built_console,
                           STATICFILES_DIRS=[("console", built_console)]):
        client = Client()
        session = client.get("/api/session")
        assert session.status_code == 200 and session.json()["authenticated"] is False
        for path in ("/api/no-such-thing", "/api", "/v1/no-such-thing",
                     "/static/console/assets/gone.js", "/admin/no-such-thing"):
            response = client.get(path)
            assert response.status_code in (301, 302, 404), path
            assert response.content != INDEX, path
        assert client.post("/playground").status_code == 405


@pytest.mark.django_db
def test_without_a_build_the_landing_page_says_the_console_is_not_built(tmp_path: Path) -> None:
    with override_settings(CONSOLE_DIST_DIR=tmp_path / "absent", STATICFILES_DIRS=[]):
        response = Client().get("/")
        deep = Client().get("/playground")
    assert response.status_code == 200
    body = response.content.decode()
    assert "console has not been built" in body
    assert 'href="/api/schema/"' in body
    assert deep.status_code == 200 and "console has not been built" in deep.content.decode()
    with override_settings(CONSOLE_DIST_DIR=tmp_path / "absent", STATICFILES_DIRS=[]):
        assert Client().get("/no-such-page").status_code == 404
