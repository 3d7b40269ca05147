"""Safe writes (docs/api.md, ETags): strong ETags, 304, and 412 on stale If-Match."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from ..helpers import TASKS, assert_problem, bearer


def headers(**extra):
    return bearer() | extra


def test_every_single_task_response_has_a_strong_etag(client):
    created = client.post(TASKS, json={"title": "x"}, headers=bearer())
    url = created.headers["Location"]
    responses = [
        created,
        client.get(url, headers=bearer()),
        client.put(url, json={"title": "y"}, headers=bearer()),
        client.patch(url, json={"title": "z"}, headers=bearer()),
        client.patch(f"{url}/complete", headers=bearer()),
    ]
    etags = [response.headers["ETag"] for response in responses]
    assert all(etag.startswith('"') and etag.endswith('"') for etag in etags)
    # GET does not change it; every write does.
    assert etags[0] == etags[1]
    assert len(set(etags[1:])) == 4


def test_if_none_match_gives_304_until_the_task_changes(client, create_task):
    url = f"{TASKS}/{create_task()['id']}"
    etag = client.get(url, headers=bearer()).headers["ETag"]
    not_modified = client.get(url, headers=headers(**{"If-None-Match": etag}))
    assert not_modified.status_code == 304
    assert not_modified.data == b""
    assert not_modified.headers["ETag"] == etag
    assert (
        client.get(url, headers=headers(**{"If-None-Match": f'"other", {etag}'})).status_code == 304
    )
    client.patch(url, json={"title": "changed"}, headers=bearer())
    fresh = client.get(url, headers=headers(**{"If-None-Match": etag}))
    assert fresh.status_code == 200
    assert fresh.json["title"] == "changed"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "", {"title": "lost update"}),
        ("patch", "", {"title": "lost update"}),
        ("patch", "/complete", None),
        ("delete", "", None),
    ],
)
def test_stale_if_match_is_412_and_changes_nothing(client, create_task, method, path, body):
    task = create_task(title="original")
    url = f"{TASKS}/{task['id']}"
    stale = client.get(url, headers=bearer()).headers["ETag"]
    current = client.patch(url, json={"description": "someone else"}, headers=bearer())
    response = getattr(client, method)(
        f"{url}{path}", json=body, headers=headers(**{"If-Match": stale})
    )
    assert_problem(response, 412)
    after = client.get(url, headers=bearer())
    assert after.json == current.json
    assert after.headers["ETag"] == current.headers["ETag"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("put", "", {"title": "new"}, 200),
        ("patch", "", {"title": "new"}, 200),
        ("patch", "/complete", None, 200),
        ("delete", "", None, 204),
    ],
)
def test_current_if_match_succeeds(client, create_task, method, path, body, status):
    url = f"{TASKS}/{create_task()['id']}"
    etag = client.get(url, headers=bearer()).headers["ETag"]
    for form in ("{etag}", '"nope", {etag}', "*"):
        if_match = form.format(etag=etag)
        response = getattr(client, method)(
            f"{url}{path}", json=body, headers=headers(**{"If-Match": if_match})
        )
        assert response.status_code == status, if_match
        if status == 204:
            break
        etag = response.headers["ETag"]


@pytest.mark.parametrize("if_match", ['W/"{etag}"', '"garbage"', "garbage", '"1.1"', '""'])
def test_non_matching_if_match_forms_are_412(client, create_task, if_match):
    url = f"{TASKS}/{create_task()['id']}"
    etag = client.get(url, headers=bearer()).headers["ETag"].strip('"')
    response = client.patch(
        url, json={"title": "x"}, headers=headers(**{"If-Match": if_match.format(etag=etag)})
    )
    assert response.status_code == 412


def test_if_match_on_missing_task_is_404(client, create_task):
    task = create_task("bob")
    response = client.patch(
        f"{TASKS}/{task['id']}", json={"title": "x"}, headers=headers(**{"If-Match": '"1.1"'})
    )
    assert response.status_code == 404


def test_etag_of_another_task_does_not_match(client, create_task):
    first, second = create_task(), create_task()
    etag = client.get(f"{TASKS}/{first['id']}", headers=bearer()).headers["ETag"]
    response = client.delete(f"{TASKS}/{second['id']}", headers=headers(**{"If-Match": etag}))
    assert response.status_code == 412


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_concurrent_writers_with_the_same_etag_one_wins(app, client, create_task, method):
    for _round in range(5):
        url = f"{TASKS}/{create_task()['id']}"
        etag = client.get(url, headers=bearer()).headers["ETag"]
        barrier = Barrier(4)

        def write(n, url=url, etag=etag, barrier=barrier):
            test_client = app.test_client()
            barrier.wait()
            kwargs = {"json": {"title": f"writer {n}"}} if method == "patch" else {}
            return getattr(test_client, method)(
                url, headers=headers(**{"If-Match": etag}), **kwargs
            )

        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(write, range(4)))
        statuses = sorted(response.status_code for response in responses)
        if method == "delete":
            # One deletes; the others find it changed (412) or already gone (404).
            assert statuses[0] == 204
            assert set(statuses[1:]) <= {404, 412}
        else:
            assert statuses == [200, 412, 412, 412]
            (winner,) = [r for r in responses if r.status_code == 200]
            assert client.get(url, headers=bearer()).json["title"] == winner.json["title"]


def test_conditional_get_orders_if_match_before_if_none_match(client, create_task):
    """RFC 9110 13.2.2: a stale If-Match is 412; a current one lets If-None-Match give 304."""
    task = create_task()
    url = f"{TASKS}/{task['id']}"
    etag = client.get(url, headers=bearer()).headers["ETag"]
    stale = f'"{task["id"]}.0"'

    def get(**conditions):
        return client.get(url, headers=headers(**conditions))

    for if_match in (etag, "*", f"{stale}, {etag}"):
        response = get(**{"If-Match": if_match, "If-None-Match": etag})
        assert response.status_code == 304, if_match
        assert response.data == b""
        assert response.headers["ETag"] == etag
    stale_match = get(**{"If-Match": stale, "If-None-Match": etag})
    assert_problem(stale_match, 412)
    for if_none_match in ("*", f"W/{etag}"):
        assert get(**{"If-None-Match": if_none_match}).status_code == 304
    assert get(**{"If-None-Match": stale}).json["id"] == task["id"]
    assert get(**{"If-Match": etag}).json["id"] == task["id"]
