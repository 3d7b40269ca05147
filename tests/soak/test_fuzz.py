"""Hostile input, generated from the OpenAPI document by schemathesis.

Positive and negative cases for every operation, with a valid token: the
service never answers 5xx, and every answer is one the document describes
(status, content type, body schema). Run by `make soak`.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ..helpers import BACKENDS, bearer, build_app, dispose, fresh_database

pytestmark = pytest.mark.soak

USER = "fuzzer"
RULE_PARAMETERS = re.compile(r"{([^}]+)}")
SEED_TAGS = ["work", "home", "Ünï", "a/b", "50% off"]
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
                f"/api/{USER}/tasks",
                json={"title": f"seed {n}", "tags": SEED_TAGS[n:]},
                headers=bearer(USER),
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
    checked = []
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
            name = parameters.get("name")
            if isinstance(name, str) and len(name) % 3 == 0:  # now and then a tag that exists
                parameters["name"] = SEED_TAGS[len(name) % len(SEED_TAGS)]
            headers = dict(case.headers or {})
            headers["Authorization"] = token
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # Nothing in this operation can be made invalid (GET /healthz, say).
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        checked.append(operation.label)
    # Every operation but the document itself, which schemathesis skips.
    assert len(checked) >= (16 if mode is GenerationMode.POSITIVE else 12), checked
    assert {"PATCH /api/{user_id}/tags/{name}", "DELETE /api/{user_id}/tags/{name}"} <= set(checked)


# Values hypothesis does not generate by itself (it leaves out surrogates), sent
# through the same schemathesis cases and checks: every answer must still be a
# documented 4xx, never a 5xx.
LONE_SURROGATE = "text \ud800 more"
OUT_OF_RANGE_TIMES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]
IF_MATCH_GARBAGE = ['"{task}.\u00b2"', '"{task}.' + "9" * 5000 + '"', '"{task}.' + "9" * 20 + '"']


def hostile_variants(operation, spec: dict) -> list[dict]:
    """Case arguments for ``operation``: each string field (and list of strings) a
    lone surrogate, each time out of range once in UTC, each If-Match garbage."""
    definition = spec["paths"][operation.path][operation.method.lower()]
    variants = []
    body = definition.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        schema = resolve(spec, body["schema"])
        for name, field in schema.get("properties", {}).items():
            field = resolve(spec, field)
            if field.get("readOnly"):
                continue
            if field.get("type") == "array" and "string" in str(field["items"].get("type")):
                variants.append({"body": example_body(spec, schema) | {name: [LONE_SURROGATE]}})
            if "string" not in str(field.get("type")):
                continue
            values = OUT_OF_RANGE_TIMES if field.get("format") == "date-time" else []
            for value in [LONE_SURROGATE, *values]:
                variants.append({"body": example_body(spec, schema) | {name: value}})
    for parameter in definition.get("parameters", []):
        if parameter["in"] == "query" and parameter.get("schema", {}).get("format") == "date-time":
            variants += [{"query": {parameter["name"]: value}} for value in OUT_OF_RANGE_TIMES]
        if parameter["in"] == "header" and parameter["name"] == "If-Match":
            variants += [{"if_match": garbage} for garbage in IF_MATCH_GARBAGE]
    return variants


def resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def example_body(spec: dict, schema: dict) -> dict:
    """The smallest body the schema accepts: its required fields, each a plain value."""
    plain = {"string": "plain text", "boolean": False, "integer": 1, "array": []}
    body = {}
    for name in schema.get("required", []):
        field = resolve(spec, schema["properties"][name])
        kind = field.get("type", "string")
        kind = kind[0] if isinstance(kind, list) else kind
        body[name] = field["enum"][0] if "enum" in field else plain.get(kind, "plain text")
    if "email" in body:
        body["email"] = "fuzz@example.com"
    if "password" in body:
        body["password"] = "long enough password"
    return body


def test_hostile_values_get_documented_4xx_answers(fuzz_app):
    from taskapi.http.openapi import current_spec

    token = bearer(USER)["Authorization"]
    task = fuzz_app.config["FUZZ_TASK_IDS"][0]
    with fuzz_app.app_context():
        spec = current_spec()
    sent = 0
    for operation in operations(fuzz_app):
        for variant in hostile_variants(operation, spec):
            headers = {"Authorization": token}
            if "if_match" in variant:
                headers["If-Match"] = variant["if_match"].format(task=task)
            parameters = {
                name: {"user_id": USER, "task_id": task}.get(name, "x")
                for name in RULE_PARAMETERS.findall(operation.path)
            }
            case = operation.Case(
                path_parameters=parameters,
                headers=headers,
                query=variant.get("query"),
                body=variant.get("body", NOT_SET),
                media_type="application/json" if "body" in variant else None,
            )
            response = case.call_and_validate(checks=CHECKS)
            assert 400 <= response.status_code < 500, (operation.label, variant)
            sent += 1
    assert sent >= 20
