"""The trash (docs/api.md, Trash): delete, list, restore, erase, empty, clear completed,
retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from taskapi.data.models import utcnow
from taskapi.extensions import db

from ..helpers import TAGS, TASKS, TRASH, bearer


def listed(client, url: str = TASKS, user: str = "alice") -> list[dict]:
    response = client.get(url, headers=bearer(user))
    assert response.status_code == 200, response.json
    return response.json


def trash(client, task_id: int, user: str = "alice", **headers):
    return client.delete(f"/api/{user}/tasks/{task_id}", headers=bearer(user) | headers)


def next_link(response) -> str | None:
    link = response.headers.get("Link")
    return link[1 : link.index(">")] if link else None


def test_a_deleted_task_is_gone_everywhere_but_the_trash(client, create_task):
    kept = create_task(title="kept", tags=["work"])
    task = create_task(title="trashed", tags=["work", "home"])
    assert trash(client, task["id"]).status_code == 204

    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).status_code == 404
    assert trash(client, task["id"]).status_code == 404  # a second DELETE
    response = client.get(TASKS, headers=bearer())
    assert [t["id"] for t in response.json] == [kept["id"]]
    assert response.headers["X-Total-Count"] == "1"
    assert listed(client, f"{TASKS}?tag=home") == []
    assert client.get(f"{TASKS}?tag=home", headers=bearer()).headers["X-Total-Count"] == "0"
    assert listed(client, f"{TASKS}?q=trashed") == []
    assert listed(client, TAGS) == [{"name": "work", "count": 1}]

    (in_trash,) = listed(client, TRASH)
    assert in_trash["id"] == task["id"]
    assert in_trash["title"] == "trashed"
    assert in_trash["tags"] == ["work", "home"]
    assert in_trash["deleted_at"].endswith("Z")
    assert listed(client, "/api/bob/trash", user="bob") == []


def test_writes_to_a_trashed_task_are_404_even_with_its_last_etag(client, create_task):
    task = create_task()
    etag = client.get(f"{TASKS}/{task['id']}", headers=bearer()).headers["ETag"]
    trash(client, task["id"])
    match = bearer() | {"If-Match": etag}
    assert (
        client.patch(f"{TASKS}/{task['id']}", json={"title": "x"}, headers=match).status_code == 404
    )
    assert (
        client.put(f"{TASKS}/{task['id']}", json={"title": "x"}, headers=bearer()).status_code
        == 404
    )
    assert client.patch(f"{TASKS}/{task['id']}/complete", headers=match).status_code == 404
    assert client.get(f"{TASKS}/{task['id']}", headers=match).status_code == 404
    assert listed(client, TRASH)[0]["title"] == "A task"


def test_delete_with_a_stale_if_match_is_412_and_keeps_the_task(client, create_task):
    task = create_task()
    stale = client.get(f"{TASKS}/{task['id']}", headers=bearer()).headers["ETag"]
    client.patch(f"{TASKS}/{task['id']}", json={"title": "edited"}, headers=bearer())
    assert trash(client, task["id"], **{"If-Match": stale}).status_code == 412
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).status_code == 200
    assert listed(client, TRASH) == []


def test_restore_brings_the_task_back_with_a_new_etag(client, create_task):
    task = create_task(tags=["work"])
    before = client.get(f"{TASKS}/{task['id']}", headers=bearer()).headers["ETag"]
    trash(client, task["id"])

    restored = client.post(f"{TRASH}/{task['id']}/restore", headers=bearer())
    assert restored.status_code == 200
    assert restored.json["id"] == task["id"]
    assert restored.json["tags"] == ["work"]
    assert "deleted_at" not in restored.json
    assert restored.headers["ETag"] != before
    assert (
        client.get(f"{TASKS}/{task['id']}", headers=bearer()).headers["ETag"]
        == (restored.headers["ETag"])
    )
    assert [t["id"] for t in listed(client)] == [task["id"]]
    assert listed(client, TAGS) == [{"name": "work", "count": 1}]
    assert listed(client, TRASH) == []
    # The ETag from before the trash names no current version.
    stale = bearer() | {"If-Match": before}
    assert client.patch(
        f"{TASKS}/{task['id']}", json={"title": "x"}, headers=stale
    ).status_code == (412)
    assert client.post(f"{TRASH}/{task['id']}/restore", headers=bearer()).status_code == 404


def test_restore_and_erase_only_touch_tasks_in_the_callers_trash(client, create_task):
    live = create_task()
    bobs = create_task(user_id="bob")
    trash(client, bobs["id"], user="bob")
    for task_id in (live["id"], bobs["id"], 999_999, 2**31):
        assert client.post(f"{TRASH}/{task_id}/restore", headers=bearer()).status_code == 404
        assert client.delete(f"{TRASH}/{task_id}", headers=bearer()).status_code == 404
    assert client.get(f"{TASKS}/{live['id']}", headers=bearer()).status_code == 200
    assert [t["id"] for t in listed(client, "/api/bob/trash", user="bob")] == [bobs["id"]]


def test_a_trashed_recurring_task_spawns_nothing(client, create_task):
    task = create_task(due_at="2027-01-04T09:00:00Z", recurrence="FREQ=DAILY")
    trash(client, task["id"])
    assert client.patch(f"{TASKS}/{task['id']}/complete", headers=bearer()).status_code == 404
    assert listed(client) == []
    client.post(f"{TRASH}/{task['id']}/restore", headers=bearer())
    done = client.patch(f"{TASKS}/{task['id']}/complete", headers=bearer())
    assert "next-occurrence" in done.headers["Link"]
    assert len(listed(client)) == 2


def test_erase_deletes_one_task_for_good(client, create_task):
    task, other = create_task(), create_task()
    trash(client, task["id"])
    trash(client, other["id"])
    assert client.delete(f"{TRASH}/{task['id']}", headers=bearer()).status_code == 204
    assert client.delete(f"{TRASH}/{task['id']}", headers=bearer()).status_code == 404
    assert client.post(f"{TRASH}/{task['id']}/restore", headers=bearer()).status_code == 404
    assert [t["id"] for t in listed(client, TRASH)] == [other["id"]]


def test_emptying_the_trash_erases_only_the_callers_trashed_tasks(client, create_task):
    live = create_task()
    for _ in range(3):
        trash(client, create_task()["id"])
    bobs = create_task(user_id="bob")
    trash(client, bobs["id"], user="bob")
    response = client.delete(TRASH, headers=bearer())
    assert response.status_code == 204
    assert response.data == b""
    assert listed(client, TRASH) == []
    assert [t["id"] for t in listed(client)] == [live["id"]]
    assert [t["id"] for t in listed(client, "/api/bob/trash", user="bob")] == [bobs["id"]]


def test_clear_completed_moves_only_completed_tasks_to_the_trash(client, create_task):
    done = [create_task(title=f"done {n}", completed=True, tags=["x"]) for n in range(2)]
    pending = create_task(title="pending", tags=["x"])
    bobs = create_task(user_id="bob", completed=True)
    response = client.delete(f"{TASKS}?status=completed", headers=bearer())
    assert response.status_code == 200
    assert response.json == {"deleted": 2}
    assert [t["id"] for t in listed(client)] == [pending["id"]]
    assert {t["id"] for t in listed(client, TRASH)} == {t["id"] for t in done}
    assert listed(client, TAGS) == [{"name": "x", "count": 1}]
    assert listed(client, "/api/bob/tasks", user="bob")[0]["id"] == bobs["id"]
    assert client.delete(f"{TASKS}?status=completed", headers=bearer()).json == {"deleted": 0}


@pytest.mark.parametrize("query", ["", "?status=all", "?status=pending", "?status=", "?q=x"])
def test_bulk_delete_without_status_completed_is_400_and_deletes_nothing(
    client, create_task, query
):
    create_task(completed=True)
    create_task()
    response = client.delete(f"{TASKS}{query}", headers=bearer())
    assert response.status_code == 400
    assert "status" in response.json["errors"]
    assert len(listed(client)) == 2
    assert listed(client, TRASH) == []


def test_the_trash_pages_latest_deletion_first_each_task_once(client, create_task):
    tasks = [create_task(title=f"t{n}") for n in range(7)]
    for task in tasks:
        trash(client, task["id"])
    seen, totals, url = [], [], f"{TRASH}?limit=3"
    while url:
        response = client.get(url, headers=bearer())
        assert response.status_code == 200, response.json
        totals.append(response.headers["X-Total-Count"])
        seen += [task["id"] for task in response.json]
        url = next_link(response)
        if len(seen) == 3:  # a deletion during the walk does not shift the pages
            trash(client, create_task(title="late")["id"])
    assert seen == [task["id"] for task in reversed(tasks)]
    assert totals == ["7", "8", "8"]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=501", "limit=x", "limit=%EF%BC%95", "cursor=nonsense"]
)
def test_bad_trash_parameters_are_400(client, query):
    assert client.get(f"{TRASH}?{query}", headers=bearer()).status_code == 400


def test_a_list_cursor_is_no_trash_cursor(client, create_task):
    for _ in range(3):
        create_task()
    link = next_link(client.get(f"{TASKS}?limit=1", headers=bearer()))
    cursor = link.split("cursor=")[1].split("&")[0]
    response = client.get(f"{TRASH}?cursor={cursor}", headers=bearer())
    assert response.status_code == 400
    assert "cursor" in response.json["errors"]


def age_trash(app, task_id: int, days: float) -> None:
    with app.app_context():
        db.session.execute(
            text("UPDATE tasks SET deleted_at = :at WHERE id = :id"),
            {"at": utcnow() - timedelta(days=days), "id": task_id},
        )
        db.session.commit()


def test_expired_tasks_are_never_listed_and_purge_trash_removes_them(
    app, client, runner, create_task
):
    old, recent = create_task(title="old"), create_task(title="recent")
    trash(client, old["id"])
    trash(client, recent["id"])
    age_trash(app, old["id"], 31)
    age_trash(app, recent["id"], 29)

    response = client.get(TRASH, headers=bearer())
    assert [t["title"] for t in response.json] == ["recent"]
    assert response.headers["X-Total-Count"] == "1"
    assert client.post(f"{TRASH}/{old['id']}/restore", headers=bearer()).status_code == 404

    result = runner.invoke(args=["purge-trash"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 expired tasks" in result.output
    with app.app_context():
        ids = db.session.execute(text("SELECT id FROM tasks")).scalars().all()
    assert ids == [recent["id"]]
    assert client.post(f"{TRASH}/{recent['id']}/restore", headers=bearer()).status_code == 200


def test_the_retention_is_configurable(make_app, database_url, create_task, client):
    task = create_task()
    trash(client, task["id"])
    short = make_app(database_url, TRASH_RETENTION_DAYS=1)
    assert listed(short.test_client(), TRASH) != []
    age_trash(short, task["id"], 2)
    assert listed(short.test_client(), TRASH) == []
    assert listed(client, TRASH) != []  # 30 days by default


def test_an_idempotent_retry_of_a_create_whose_task_was_trashed_is_404(client):
    headers = bearer() | {"Idempotency-Key": "create-1"}
    created = client.post(TASKS, json={"title": "once"}, headers=headers)
    trash(client, created.json["id"])
    retry = client.post(TASKS, json={"title": "once"}, headers=headers)
    assert retry.status_code == 404
    assert listed(client) == []
    client.post(f"{TRASH}/{created.json['id']}/restore", headers=bearer())
    again = client.post(TASKS, json={"title": "once"}, headers=headers)
    assert (again.status_code, again.json["id"]) == (201, created.json["id"])
    assert len(listed(client)) == 1


def test_renaming_a_tag_leaves_trashed_tasks_alone(client, create_task):
    live = create_task(tags=["work"])
    trashed = create_task(tags=["work"])
    trash(client, trashed["id"])
    renamed = client.patch("/api/alice/tags/work", json={"name": "job"}, headers=bearer())
    assert renamed.json == {"name": "job", "count": 1}
    assert client.get(f"{TASKS}/{live['id']}", headers=bearer()).json["tags"] == ["job"]
    restored = client.post(f"{TRASH}/{trashed['id']}/restore", headers=bearer()).json
    assert restored["tags"] == ["work"]
    assert listed(client, TAGS) == [
        {"name": "job", "count": 1},
        {"name": "work", "count": 1},
    ]
