# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Credits fixtures: the feature licensed in this process, the forge fake, repositories,
and the ledger's invariants checked after every test that touched the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_forge import FakeForge


@pytest.fixture(autouse=True)
def ledger_stays_sound(request) -> Iterator[None]:
    """After each test with a database: every deferred check fires now (tests in one
    rolled-back transaction never commit), then every balance equals the sum of its
    legs, each transaction sums to zero, and each commodity sums to zero."""
    names = request.fixturenames
    db_fixture = "transactional_db" if "transactional_db" in names else (
        "db" if "db" in names else None)
    if db_fixture is None:
        yield
        return
    request.getfixturevalue(db_fixture)
    yield
    from django.db import connection

    from potluck_enterprise.credits import ledger

    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    problems = ledger.verify()
    assert not problems, problems


@pytest.fixture
def credits_on(licensed) -> Callable[..., Any]:
    """Installs a licence that grants billing and credits (switched on in this process)."""
    from potluck import extensions

    def on(features: tuple[str, ...] = ("billing", "credits")) -> Any:
        row = licensed(features=list(features))
        assert extensions.feature_available("credits")
        return row

    return on


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    fake = FakeForge().start()
    yield fake
    fake.stop()


@pytest.fixture
def repo(forge) -> Callable[..., Any]:
    """A GitHub repository pointed at the forge fake (``repo(**rules)`` -> (repo, secret))."""
    from potluck_enterprise.credits import repositories

    def make(full_name: str = "potluck/potluck", forge_name: str = "github",
             **rules: Any) -> tuple[Any, str]:
        defaults: dict[str, Any] = {"base_credits": 1000, "hold_days": 30,
                                    "maintainers": ["maint"],
                                    "label_weights": {"security": "3", "docs": "0.5"}}
        defaults.update(rules)
        api_url = forge.url if forge_name == "github" else forge.url + "/gitlab/api/v4"
        return repositories.create(forge_name, full_name, api_url=api_url,
                                   api_token="token-test", **defaults)

    return make
