"""Hostile input, generated from the OpenAPI document by schemathesis.

Positive and negative cases for every operation, with a valid token: the
service never answers 5xx, and every answer is one the document describes
(status, content type, body schema). Run by `make soak`.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ..helpers import BACKENDS, bearer, build_app, dispose, fresh_database

pytestmark = pytest.mark.soak

USER = "fuzzer"
EXAMPLES_PER_OPERATION = 150
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_app(request, tmp_path_factory):
    import flask_migrate

    with fresh_database(request.param, tmp_path_factory.mktemp("fuzz")) as url:
        app = build_app(url)
        with app.app_context():
            flask_migrate.upgrade()
        client = app.test_client()
        app.config["FUZZ_TASK_IDS"] = [
            client.post(
                f"/api/{USER}/tasks", json={"title": f"seed {n}"}, headers=bearer(USER)
            ).json["id"]
            for n in range(5)
        ]
        yield app
        dispose(app)


def operations(app) -> list:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_only_documented_answers(fuzz_app, mode):
    """Every operation, EXAMPLES_PER_OPERATION generated requests each."""
    token = bearer(USER)["Authorization"]
    known_tasks = fuzz_app.config["FUZZ_TASK_IDS"]
    checked = 0
    for operation in operations(fuzz_app):

        @settings(
            deadline=None,
            max_examples=EXAMPLES_PER_OPERATION,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case):
            parameters = case.path_parameters or {}
            if "user_id" in parameters:
                parameters["user_id"] = USER  # the token's user: requests get past auth
            task_id = parameters.get("task_id")
            if isinstance(task_id, int) and 0 <= task_id < 1000:
                parameters["task_id"] = known_tasks[task_id % len(known_tasks)]
            headers = dict(case.headers or {})
            headers["Authorization"] = token
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # Nothing in this operation can be made invalid (GET /healthz, say).
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        checked += 1
    # Every operation but the document itself, which schemathesis skips.
    assert checked >= (13 if mode is GenerationMode.POSITIVE else 9)
