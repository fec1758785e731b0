# SPDX-License-Identifier: Apache-2.0
"""Schemathesis over the management API's own OpenAPI schema (/api/schema/), with a real
API key holding every scope: no server error, and no answer that breaks the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES = 12  # per operation
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _fuzz(operation: schemathesis.APIOperation, label: str, headers: dict[str, str],
          ran: dict[str, int]) -> None:
    """Up to EXAMPLES cases of one operation, each checked; ``ran`` counts them."""

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)
        ran[label] = ran.get(label, 0) + 1

    run()


def test_every_operation_keeps_its_schema(org, key_for):
    from django.core.wsgi import get_wsgi_application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    key = key_for(org, ["read", "write", "admin", "inference"], name="fuzz")
    headers = {"Authorization": f"Bearer {key}"}
    ran: dict[str, int] = {}
    findings: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if operation.path.startswith("/api/keys/{id}/revoke"):
            continue  # revoking the fuzzer's own key ends the run; tests/community/accounts

        try:
            _fuzz(operation, label, headers, ran)
        except (Exception, BaseExceptionGroup) as failure:  # every finding, not the first
            findings[label] = str(failure)[:1500]
    assert findings == {}, "\n\n".join(f"{k}:\n{v}" for k, v in findings.items())
    assert len(ran) >= 10, ran
    print(f"schemathesis: {sum(ran.values())} cases over {len(ran)} operations, 0 findings")
