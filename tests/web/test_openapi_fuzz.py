"""Schemathesis over the app's OpenAPI document, logged in as the administrator: no request it makes from the
schema gets a server error (5xx)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python.asgi import ASGIClient
from sqlalchemy import Engine

from kernel.db import make_engine
from tests.bureau import login
from web.csrf import CSRF_HEADER

EXAMPLES = 10
"""Cases per operation: about 130 operations, the whole run well inside 90 s."""
LAST = ("/api/users", "/api/me")
"""Run these last: a fuzzed password change or deactivation may end the administrator's session."""


@pytest.fixture
def empty_engine(tmp_path: Path) -> Iterator[Engine]:
    """SQLite only: the fuzzing is about request handling, the same on both databases."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fuzz.db'}")
    yield engine
    engine.dispose()


def test_no_operation_answers_a_server_error(api: TestClient) -> None:
    login(api, "admin")
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    client = ASGIClient(cast(Any, api.app))  # not entered: the app's lifespan is the ``api`` client's
    client.cookies.update(dict(api.cookies))
    client.headers[CSRF_HEADER] = api.headers[CSRF_HEADER]
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document has an invalid operation: {result.err()}"
        operations.append(result.ok())
    operations.sort(key=lambda op: op.path.startswith(LAST))
    assert len(operations) > 100, "the schema lists every API operation"
    failures: list[str] = []
    answered: Counter[int] = Counter()

    for operation in operations:

        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            try:
                response = case.call(session=client)
            except Exception as err:  # noqa: BLE001 - the app raised: a 500, collected, the run goes on
                failures.append(f"{case.method} {case.formatted_path}: raised {type(err).__name__}: {err}"[:300])
                return
            answered[response.status_code // 100] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as err:  # noqa: BLE001 - every failed check is collected, the run goes on
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}: {str(err)[:300]}")

        run()
    assert answered[2] > 50 and answered[4] > 50, f"the fuzzing reached the endpoints: {dict(answered)}"
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(sorted(set(failures))[:40])
