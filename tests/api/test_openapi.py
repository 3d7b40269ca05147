"""The OpenAPI document (docs/api.md, "Service endpoints") and the docs page."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from taskapi.http.openapi import build_spec, documented, openapi_path, success


def test_document_is_valid_openapi(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    validate(response.json)
    assert response.json["openapi"].startswith("3.")


def test_document_lists_every_route_and_method(app, client):
    paths = client.get("/api/openapi.json").json["paths"]
    registered = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in paths.items() for method in item}
    assert documented == registered
    assert len(registered) >= 14


def test_document_describes_schemas_parameters_errors_and_security(client):
    spec = client.get("/api/openapi.json").json
    task = spec["components"]["schemas"]["Task"]
    assert task["properties"]["title"]["maxLength"] == 200
    assert task["properties"]["priority"]["enum"] == ["low", "normal", "high"]
    assert task["properties"]["id"]["readOnly"] is True
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors"} <= set(problem["properties"])

    listing = spec["paths"]["/api/{user_id}/tasks"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"user_id", "status", "q", "sort", "limit", "cursor"} <= names
    assert {"Link", "X-Total-Count"} <= set(listing["responses"]["200"]["headers"])
    create = spec["paths"]["/api/{user_id}/tasks"]["post"]
    assert "Idempotency-Key" in {parameter["name"] for parameter in create["parameters"]}
    assert create["summary"] == "Create a task; with an Idempotency-Key, at most once."
    update = spec["paths"]["/api/{user_id}/tasks/{task_id}"]["patch"]
    assert {"400", "401", "403", "404", "412", "415", "429"} <= set(update["responses"])
    error = update["responses"]["412"]["content"]["application/problem+json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Problem"}
    assert spec["paths"]["/api/auth/login"]["post"]["security"] == []


def test_document_describes_tags_recurrence_and_reminders(client):
    spec = client.get("/api/openapi.json").json
    task = spec["components"]["schemas"]["Task"]["properties"]
    assert task["tags"]["type"] == "array"
    assert task["tags"]["maxItems"] == 20
    assert task["tags"]["items"]["maxLength"] == 40
    assert task["recurrence"]["maxLength"] == 200
    assert task["series_id"]["readOnly"] is True
    assert {"time_zone", "remind_at"} <= set(task)
    listing = spec["paths"]["/api/{user_id}/tasks"]["get"]["parameters"]
    names = {parameter["name"] for parameter in listing}
    assert {"tag", "due_after", "due_before", "remind_before"} <= names
    (sort,) = [parameter for parameter in listing if parameter["name"] == "sort"]
    assert {"remind_at", "-remind_at"} <= set(sort["schema"]["enum"])
    complete = spec["paths"]["/api/{user_id}/tasks/{task_id}/complete"]["patch"]
    assert "Idempotency-Key" in {parameter["name"] for parameter in complete["parameters"]}
    assert "Link" in complete["responses"]["200"]["headers"]
    tags = spec["paths"]["/api/{user_id}/tags"]["get"]["responses"]["200"]
    assert tags["content"]["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/Tag"
    }
    rename = spec["paths"]["/api/{user_id}/tags/{name}"]["patch"]
    assert {"400", "404"} <= set(rename["responses"])
    assert "delete" in spec["paths"]["/api/{user_id}/tags/{name}"]


def test_document_describes_the_trash_and_the_change_feed(client):
    spec = client.get("/api/openapi.json").json
    paths = spec["paths"]
    assert {"get", "delete"} <= set(paths["/api/{user_id}/trash"])
    assert "post" in paths["/api/{user_id}/trash/{task_id}/restore"]
    assert "delete" in paths["/api/{user_id}/trash/{task_id}"]
    clear = paths["/api/{user_id}/tasks"]["delete"]
    (status,) = [parameter for parameter in clear["parameters"] if parameter["name"] == "status"]
    assert status["required"] is True
    assert status["schema"]["enum"] == ["completed"]
    trashed = spec["components"]["schemas"]["TrashedTask"]["properties"]
    assert "deleted_at" in trashed
    changes = paths["/api/{user_id}/changes"]["get"]
    assert {"since", "limit"} <= {parameter["name"] for parameter in changes["parameters"]}
    assert {"200", "400", "410"} <= set(changes["responses"])
    page = spec["components"]["schemas"]["Changes"]["properties"]
    assert page["changes"]["items"]["oneOf"] == [
        {"$ref": "#/components/schemas/Task"},
        {"$ref": "#/components/schemas/Deletion"},
    ]
    assert {"next", "more"} <= set(page)


def test_docs_page_is_served_from_the_package(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "no external assets"
    for asset in re.findall(r'(?:src|href)="(/api/docs/[^"]+)"', html):
        with client.get(asset) as response:
            assert response.status_code == 200, asset
            assert len(response.data) > 1000
    assert client.get("/api/docs/../../etc/passwd").status_code == 404
    assert client.get("/api/docs/nope.js").status_code == 404


def test_a_route_without_documentation_fails_the_build(database_url, make_app):
    app = make_app(database_url)

    @app.get("/undocumented")
    def undocumented():
        """Forgot @documented."""
        return {}

    with pytest.raises(AttributeError, match="openapi"):
        build_spec(app)


def test_documentation_is_read_from_the_view(database_url, make_app):
    app = make_app(database_url)

    @app.get("/api/<user_id>/tasks/<int:task_id>/echo")
    @documented(responses={200: success(description="Echoed")}, errors=(404,))
    def echo(user_id, task_id):
        """Echo a task id.

        A longer description, on the next lines.
        """
        return {}

    operation = build_spec(app)["paths"]["/api/{user_id}/tasks/{task_id}/echo"]["get"]
    assert operation["summary"] == "Echo a task id."
    assert operation["description"] == "A longer description, on the next lines."
    assert [parameter["name"] for parameter in operation["parameters"]] == ["user_id", "task_id"]
    assert {"200", "404", "414", "429", "500", "503"} == set(operation["responses"])
    assert operation["security"] == []  # no user_view on it
