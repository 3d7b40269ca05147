"""Bad input of any kind is a 4xx problem, never a 500 or a redirect (docs/api.md, Errors)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from ..helpers import TASKS, assert_problem, bearer

# A lone surrogate, as a JSON escape and as the raw bytes Python's JSON parser lets
# through, inside text long enough to pass every length check (passwords: 8).
LONE_SURROGATES = {
    "json escape": b'"text \\ud800 more"',
    "raw bytes": b'"text \xed\xa0\x80 more"',
}


def body_with(field: str, encoded: bytes, **others: str) -> bytes:
    fields = [f'"{name}": "{value}"'.encode() for name, value in others.items()]
    return b"{" + b", ".join([*fields, f'"{field}": '.encode() + encoded]) + b"}"


@pytest.mark.parametrize("surrogate", LONE_SURROGATES.values(), ids=LONE_SURROGATES)
@pytest.mark.parametrize("field", ["title", "description"])
@pytest.mark.parametrize("idempotency_key", [None, "retry-1"])
def test_lone_surrogate_in_task_text_is_400(client, create_task, surrogate, field, idempotency_key):
    task = create_task(title="kept")
    headers = bearer() | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
    created = client.post(
        TASKS,
        data=body_with(field, surrogate, title="x"),
        content_type="application/json",
        headers=headers,
    )
    assert_problem(created, 400)
    for method in ("put", "patch"):
        response = getattr(client, method)(
            f"{TASKS}/{task['id']}",
            data=body_with(field, surrogate),
            content_type="application/json",
            headers=bearer(),
        )
        assert_problem(response, 400)
    assert [t["title"] for t in client.get(TASKS, headers=bearer()).json] == ["kept"]


@pytest.mark.parametrize("surrogate", LONE_SURROGATES.values(), ids=LONE_SURROGATES)
@pytest.mark.parametrize(
    ("path", "field", "others"),
    [
        ("/api/auth/register", "email", {"name": "N", "password": "long enough"}),
        ("/api/auth/register", "name", {"email": "n@example.com", "password": "long enough"}),
        ("/api/auth/register", "password", {"email": "n@example.com", "name": "N"}),
        ("/api/auth/login", "email", {"password": "long enough"}),
        ("/api/auth/login", "password", {"email": "n@example.com"}),
    ],
)
def test_lone_surrogate_in_account_fields_is_400(client, surrogate, path, field, others):
    response = client.post(
        path, data=body_with(field, surrogate, **others), content_type="application/json"
    )
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "due_at",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:00:00-01:00"],
)
def test_due_at_outside_the_representable_years_in_utc_is_400(client, create_task, due_at):
    body = assert_problem(
        client.post(TASKS, json={"title": "x", "due_at": due_at}, headers=bearer()), 400
    )
    assert "due_at" in body["errors"]
    task = create_task()
    response = client.patch(f"{TASKS}/{task['id']}", json={"due_at": due_at}, headers=bearer())
    assert "due_at" in assert_problem(response, 400)["errors"]


def test_due_at_at_the_edges_of_the_range_is_kept(client):
    for due_at in (
        "9999-12-31T23:59:59+00:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59+23:59",
    ):
        response = client.post(TASKS, json={"title": "x", "due_at": due_at}, headers=bearer())
        assert response.status_code == 201, due_at


IF_MATCH_GARBAGE = [
    '"{id}.\u00b2"',  # superscript two (a Latin-1 header byte): isdigit() yes, int() no
    '"{id}.\u0661"',  # Arabic-Indic one: int() says 1, the current version
    '"{id}.' + "9" * 5000 + '"',  # past int()'s digit limit
    '"{id}.' + "9" * 20 + '"',  # past the column's range
    '"{id}.-1"',
    '"{id}.+1"',
    '"{id}. 1"',
    '"{id}."',
    '"{id}"',
    '"{id}.1.1"',
    '"\u00e9"',
]
WRITES = [
    ("put", "", {"title": "lost"}),
    ("patch", "", {"title": "lost"}),
    ("patch", "/complete", None),
    ("delete", "", None),
]


@pytest.mark.parametrize("if_match", IF_MATCH_GARBAGE)
@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
def test_if_match_naming_no_current_etag_is_412(
    client, create_task, if_match, method, suffix, body
):
    task = create_task(title="original")
    url = f"{TASKS}/{task['id']}"
    before = client.get(url, headers=bearer())
    response = getattr(client, method)(
        url + suffix, json=body, headers=bearer() | {"If-Match": if_match.format(id=task["id"])}
    )
    assert_problem(response, 412)
    after = client.get(url, headers=bearer())
    assert (after.json, after.headers["ETag"]) == (before.json, before.headers["ETag"])


def test_stale_if_match_on_get_is_a_412_problem(client, create_task):
    task = create_task()
    url = f"{TASKS}/{task['id']}"
    stale = client.get(url, headers=bearer()).headers["ETag"]
    current = client.patch(url, json={"title": "edited"}, headers=bearer()).headers["ETag"]
    body = assert_problem(client.get(url, headers=bearer() | {"If-Match": stale}), 412)
    assert "edited" not in str(body)  # a problem, not the task
    for if_match in (current, "*", f'"x", {current}'):
        response = client.get(url, headers=bearer() | {"If-Match": if_match})
        assert response.status_code == 200
        assert response.json["title"] == "edited"


def spelled(task_id: int, zero: str) -> str:
    """``task_id`` in another script's digits (``zero`` is that script's 0), percent-encoded."""
    return quote("".join(chr(ord(zero) + int(digit)) for digit in str(task_id)))


ID_SPELLINGS = {
    "fullwidth": lambda n: spelled(n, "\uff10"),
    "arabic-indic": lambda n: spelled(n, "\u0660"),
    "devanagari": lambda n: spelled(n, "\u0966"),
    "leading zero": lambda n: f"0{n}",
    "plus": lambda n: f"+{n}",
    "space after": lambda n: f"{n}%20",
    "space before": lambda n: f"%20{n}",
}


@pytest.mark.parametrize("spell", ID_SPELLINGS.values(), ids=ID_SPELLINGS)
def test_task_ids_are_ascii_digits_only(client, create_task, spell):
    task = create_task()  # none of these may alias it
    for method in ("get", "put", "patch", "delete"):
        response = getattr(client, method)(
            f"{TASKS}/{spell(task['id'])}", json={"title": "x"}, headers=bearer()
        )
        assert_problem(response, 404)
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json == task


@pytest.mark.parametrize("user_id", [".", "..", "...", "%2E", "%2E%2E"])
def test_user_ids_made_of_dots_are_refused(client, user_id):
    response = client.post(f"/api/{user_id}/tasks", json={"title": "x"}, headers=bearer(".."))
    assert_problem(response, 404)
    assert "Location" not in response.headers
    # A token naming such a user is no valid token either.
    assert_problem(client.get(TASKS, headers=bearer("..")), 401)


@pytest.mark.parametrize(
    "path",
    [
        "/api//alice/tasks",
        "//api/alice/tasks",
        "/api/alice//tasks",
        "/api/alice/tasks//1",
        "/api/alice/tasks/1//complete",
        "//healthz",
        "/api/alice/tasks/",
    ],
)
def test_doubled_and_trailing_slashes_are_404_not_redirects(client, create_task, path):
    create_task()
    for method in ("get", "post", "patch", "delete"):
        response = getattr(client, method)(
            path, json={"title": "x"}, headers=bearer() | {"Host": "evil.example"}
        )
        assert_problem(response, 404)
        assert "Location" not in response.headers


def test_no_route_redirects(app):
    for rule in app.url_map.iter_rules():
        assert not rule.rule.endswith("/"), rule  # Werkzeug redirects to those
        assert rule.redirect_to is None, rule
    assert app.url_map.merge_slashes is False
