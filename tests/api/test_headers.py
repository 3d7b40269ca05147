"""Response headers a cache, a proxy log or an attacker would read (docs/api.md, Headers)."""

from __future__ import annotations

import base64

import pytest

from ..helpers import TASKS, bearer

SECRET_TITLE = "Pick up the lab results from Dr. Finch"


def next_link(response) -> str:
    link = response.headers["Link"]
    assert link.endswith('>; rel="next"'), link
    return link[1 : -len('>; rel="next"')]


@pytest.fixture
def two_pages(client, create_task):
    create_task(title=SECRET_TITLE)
    create_task(title=SECRET_TITLE + " (again)")
    return f"{TASKS}?limit=1&sort=title"


def test_link_never_echoes_the_host_header(client, two_pages):
    response = client.get(two_pages, headers=bearer() | {"Host": "evil.example"})
    link = next_link(response)
    assert link.startswith("/api/alice/tasks?")
    assert "evil" not in str(response.headers)
    assert client.get(link, headers=bearer()).status_code == 200


def test_link_is_absolute_from_public_url(app, database_url, make_app, two_pages):
    client = make_app(database_url, PUBLIC_URL="https://tasks.example.com").test_client()
    response = client.get(two_pages, headers=bearer() | {"Host": "evil.example"})
    assert next_link(response).startswith("https://tasks.example.com/api/alice/tasks?")


def test_forwarded_host_counts_only_behind_a_trusted_proxy(app, database_url, make_app, two_pages):
    forwarded = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    untrusted = make_app(database_url).test_client()
    assert next_link(untrusted.get(two_pages, headers=bearer() | forwarded)).startswith("/api/")


def test_cursor_reveals_no_task_text(client, two_pages):
    cursor = next_link(client.get(two_pages, headers=bearer())).split("cursor=")[1]
    cursor = cursor.split("&")[0]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    for word in ("results", "Finch", SECRET_TITLE):  # long enough not to turn up by chance
        assert word.encode() not in raw
        assert word not in cursor


def test_cursors_of_titles_of_different_lengths_are_as_long(client, create_task):
    def cursor_length(user_id: str, title: str) -> int:
        for _ in range(2):
            create_task(user_id, title=title)
        page = client.get(f"/api/{user_id}/tasks?limit=1&sort=title", headers=bearer(user_id))
        return len(next_link(page).split("cursor=")[1].split("&")[0])

    assert cursor_length("short", "a") == cursor_length("long", "b" * 150)


def test_cursor_for_a_long_title_still_works(client, create_task):
    title = "\U0001f600" * 200  # 200 characters, 800 bytes of UTF-8
    create_task(title=title)
    create_task(title=title)
    response = client.get(f"{TASKS}?limit=1&sort=title", headers=bearer())
    follow = client.get(next_link(response), headers=bearer())
    assert follow.status_code == 200
    assert [task["title"] for task in follow.json] == [title]


def test_retry_after_only_on_429_and_503(limited_client):
    client = limited_client(TASKS_RATE_LIMIT="100 per minute")
    created = client.post(TASKS, json={"title": "x"}, headers=bearer())
    task_url = created.headers["Location"]
    etag = created.headers["ETag"]
    responses = [
        created,
        client.get(TASKS, headers=bearer()),
        client.get(task_url, headers=bearer() | {"If-None-Match": etag}),  # 304
        client.patch(task_url, json={"title": "y"}, headers=bearer() | {"If-Match": '"0.0"'}),
        client.get("/api/alice/tasks/999999", headers=bearer()),  # 404
        client.get(TASKS),  # 401
        client.get("/healthz"),
        client.delete(task_url, headers=bearer()),  # 204
    ]
    assert [r.status_code for r in responses] == [201, 200, 304, 412, 404, 401, 200, 204]
    for response in responses:
        assert "Retry-After" not in response.headers, response.status_code
        assert not any(name.startswith("X-RateLimit") for name, _ in response.headers)


def test_readyz_503_carries_retry_after(make_app):
    response = make_app("postgresql://postgres@127.0.0.1:1/taskapi").test_client().get("/readyz")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0


def test_authenticated_responses_are_not_stored_by_caches(client, create_task):
    task = create_task()
    task_url = f"{TASKS}/{task['id']}"
    etag = client.get(task_url, headers=bearer()).headers["ETag"]
    responses = [
        client.get(TASKS, headers=bearer()),
        client.get(task_url, headers=bearer()),
        client.get(task_url, headers=bearer() | {"If-None-Match": etag}),
        client.post(TASKS, json={"title": "x"}, headers=bearer()),
        client.patch(task_url, json={"title": "y"}, headers=bearer()),
        client.get(task_url, headers=bearer("bob")),  # 403
        client.get("/api/alice/tasks/999999", headers=bearer()),  # 404
        client.get(TASKS, headers={"Authorization": "Bearer expired.or.forged"}),  # 401
        client.delete(task_url, headers=bearer()),
    ]
    for response in responses:
        assert response.headers.get("Cache-Control") == "no-store", response.status_code


def test_token_responses_are_not_stored_by_caches(client):
    account = {"email": "cache@example.com", "name": "C", "password": "long enough"}
    registered = client.post("/api/auth/register", json=account)
    credentials = {"email": account["email"], "password": account["password"]}
    logged_in = client.post("/api/auth/login", json=credentials)
    assert (registered.status_code, logged_in.status_code) == (201, 200)
    for response in (registered, logged_in):
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "origins", [["https://app.example.com"], ["https://a.example", "https://b.example"]]
)
def test_with_cors_every_response_varies_by_origin(app, database_url, make_app, origins):
    client = make_app(database_url, CORS_ORIGINS=origins).test_client()
    for origin in ({}, {"Origin": origins[0]}, {"Origin": "https://evil.example"}):
        for response in (
            client.get("/healthz", headers=origin),
            client.get("/readyz", headers=origin),
            client.get(TASKS, headers=bearer() | origin),
            client.get("/nope", headers=origin),
            client.options(TASKS, headers=origin | {"Access-Control-Request-Method": "GET"}),
        ):
            assert "Origin" in response.vary, (origin, response.status_code)


def test_the_api_never_reads_or_sets_cookies(client, create_task):
    task = create_task()
    cookie = {"Cookie": "session=eyJ1c2VyIjoiYm9iIn0.forged"}
    for response in (
        client.get(f"{TASKS}/{task['id']}", headers=bearer() | cookie),
        client.post(TASKS, json={"title": "x"}, headers=bearer() | cookie),
        client.get("/healthz", headers=cookie),
    ):
        assert response.status_code in (200, 201)
        assert "Set-Cookie" not in response.headers
        assert "Cookie" not in response.vary
