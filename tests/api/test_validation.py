"""Bad input gets a clear 400/413/415 naming the problem, and changes nothing."""

from __future__ import annotations

import pytest

from ..helpers import TASKS, assert_problem, bearer


def post(client, body=None, **kwargs):
    kwargs.setdefault("headers", bearer())
    if body is not None:
        kwargs["json"] = body
    return client.post(TASKS, **kwargs)


def assert_field_error(response, field: str, status: int = 400):
    assert field in assert_problem(response, status)["errors"], response.json


def assert_nothing_stored(client):
    assert client.get(TASKS, headers=bearer()).json == []


@pytest.mark.parametrize("length", [1, 200])
def test_title_length_accepted(client, length):
    response = post(client, {"title": "t" * length})
    assert response.status_code == 201
    assert response.json["title"] == "t" * length


@pytest.mark.parametrize("title", ["", "t" * 201, "   ", "\n\t "])
def test_title_length_rejected(client, title):
    assert_field_error(post(client, {"title": title}), "title")
    assert_nothing_stored(client)


def test_title_is_trimmed_before_measuring(client):
    response = post(client, {"title": "  " + "t" * 200 + "  "})
    assert response.status_code == 201
    assert response.json["title"] == "t" * 200


def test_title_is_required_on_create(client):
    assert_field_error(post(client, {"description": "no title"}), "title")


@pytest.mark.parametrize("length", [0, 1000])
def test_description_length_accepted(client, length):
    response = post(client, {"title": "x", "description": "d" * length})
    assert response.status_code == 201
    assert response.json["description"] == "d" * length


def test_description_too_long(client):
    assert_field_error(post(client, {"title": "x", "description": "d" * 1001}), "description")
    assert_nothing_stored(client)


def test_non_ascii_is_measured_in_characters(client):
    response = post(client, {"title": "é" * 200, "description": "日" * 1000})
    assert response.status_code == 201
    assert response.json["title"] == "é" * 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", 42),
        ("title", None),
        ("title", ["x"]),
        ("title", {"x": 1}),
        ("title", True),
        ("description", 42),
        ("description", False),
        ("completed", "true"),
        ("completed", 1),
        ("completed", 0),
        ("completed", None),
        ("completed", "yes"),
    ],
)
def test_wrong_types(client, field, value):
    body = {"title": "x"} | {field: value}
    assert_field_error(post(client, body), field)
    assert_nothing_stored(client)


@pytest.mark.parametrize("field", ["title", "description"])
def test_nul_characters_rejected(client, field):
    body = {"title": "x"} | {field: "before\u0000after"}
    response = post(client, body)
    assert_field_error(response, field)
    assert "NUL" in response.json["errors"][field][0]
    assert_nothing_stored(client)


def test_unknown_field_rejected(client):
    response = post(client, {"title": "x", "owner": "bob"})
    assert_field_error(response, "owner")
    assert response.json["errors"]["owner"] == ["Unknown field."]


@pytest.mark.parametrize("field", ["id", "user_id", "created_at", "updated_at"])
def test_read_only_fields_rejected(client, field):
    response = post(client, {"title": "x", field: "bob"})
    assert_field_error(response, field)
    assert response.json["errors"][field] == ["Read-only field."]
    assert_nothing_stored(client)


def test_every_bad_field_is_named(client):
    response = post(client, {"title": "", "description": 5, "completed": "no", "extra": 1})
    assert set(response.json["errors"]) == {"title", "description", "completed", "extra"}


@pytest.mark.parametrize(
    "data", [b"{", b'{"title": "x",}', b"", b"\xff\xfe", b"{'title': 'x'}", b"[" * 100_000]
)
def test_malformed_json(client, data):
    response = post(client, data=data, content_type="application/json", headers=bearer())
    assert_problem(response, 400)
    assert_nothing_stored(client)


@pytest.mark.parametrize("data", [b"[]", b'["title"]', b'"x"', b"42", b"null", b"true"])
def test_non_object_json(client, data):
    response = post(client, data=data, content_type="application/json", headers=bearer())
    assert response.status_code == 400
    assert response.json["detail"] == "The request body must be a JSON object."


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_wrong_content_type_is_415(client, content_type):
    kwargs = {"content_type": content_type} if content_type else {}
    response = post(client, data=b'{"title": "x"}', headers=bearer(), **kwargs)
    assert_problem(response, 415)
    assert_nothing_stored(client)


def test_json_with_charset_is_accepted(client):
    response = post(client, data=b'{"title": "x"}', content_type="application/json; charset=utf-8")
    assert response.status_code == 201


def test_oversized_body_is_413(client):
    body = b'{"title": "' + b"x" * (1024 * 1024) + b'"}'
    response = post(client, data=body, content_type="application/json", headers=bearer())
    assert_problem(response, 413)
    assert_nothing_stored(client)


def test_update_needs_a_field(client, create_task):
    task = create_task()
    response = client.patch(f"{TASKS}/{task['id']}", json={}, headers=bearer())
    assert_field_error(response, "_schema")


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "t" * 201},
        {"description": "d" * 1001},
        {"completed": "false"},
        {"id": 5},
        {"user_id": "bob"},
        {"title": "x", "colour": "red"},
        {"title": "nul\u0000"},
    ],
)
def test_bad_updates_change_nothing(client, create_task, method, body):
    task = create_task(title="Original", description="Kept")
    response = getattr(client, method)(f"{TASKS}/{task['id']}", json=body, headers=bearer())
    assert response.status_code == 400
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json == task


def test_update_wrong_content_type_is_415(client, create_task):
    task = create_task()
    response = client.put(f"{TASKS}/{task['id']}", data="title=x", headers=bearer())
    assert response.status_code == 415


def test_huge_numbers_and_deep_nesting_in_body(client):
    response = post(client, {"title": "x", "completed": 10**400})
    assert response.status_code == 400
    response = post(
        client,
        data=b'{"title": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        content_type="application/json",
        headers=bearer(),
    )
    assert response.status_code == 400
