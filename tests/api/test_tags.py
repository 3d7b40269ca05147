"""Tags (docs/api.md, Tags): on tasks, as a list filter, as a list with counts, renamed, removed."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from taskapi.data.models import TaskTag, folded
from taskapi.extensions import db

from ..helpers import TAGS, TASKS, assert_problem, bearer


def post(client, body, user="alice"):
    return client.post(f"/api/{user}/tasks", json=body, headers=bearer(user))


def listed_titles(client, query: str) -> list[str]:
    response = client.get(f"{TASKS}?{query}", headers=bearer())
    assert response.status_code == 200, response.json
    return [task["title"] for task in response.json]


def test_tags_default_to_an_empty_list(client, create_task):
    task = create_task()
    assert task["tags"] == []
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json["tags"] == []


def test_tags_are_trimmed_merged_case_insensitively_and_kept_in_order(client, create_task):
    task = create_task(tags=["  Work ", "home", "WORK", "Straße", "STRASSE", "ünï", "ÜNÏ"])
    assert task["tags"] == ["Work", "home", "Straße", "ünï"]
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json["tags"] == task["tags"]
    assert client.get(TASKS, headers=bearer()).json[0]["tags"] == task["tags"]


def test_twenty_tags_are_accepted_and_duplicates_do_not_count(create_task):
    names = [f"t{n}" for n in range(20)]
    assert create_task(tags=[*names, "T0", "t19"])["tags"] == names


@pytest.mark.parametrize(
    "tags",
    [
        [f"t{n}" for n in range(21)],
        [""],
        ["   "],
        ["x" * 41],
        ["a,b"],
        ["tab\there"],
        ["new\nline"],
        ["bell\x07"],
        ["del\x7f"],
        ["c1\x85inside"],
        ["nul\x00"],
        ["line\u2028separator"],
        ["paragraph\u2029separator"],
        ["."],
        [".."],
        [42],
        [None],
        [["nested"]],
        "work",
        {"work": True},
        None,
    ],
)
def test_bad_tags_are_400_naming_tags_and_store_nothing(client, tags):
    response = post(client, {"title": "x", "tags": tags})
    assert response.status_code == 400, response.json
    assert "tags" in response.json["errors"]
    assert client.get(TASKS, headers=bearer()).json == []


def test_every_bad_tag_is_reported_with_its_position(client):
    response = post(client, {"title": "x", "tags": ["ok", "", "a,b"]})
    messages = response.json["errors"]["tags"]
    assert len(messages) == 2
    assert messages[0].startswith("Tag 2:") and messages[1].startswith("Tag 3:")


def test_forty_characters_after_trimming_are_accepted(create_task):
    assert create_task(tags=["  " + "é" * 40 + " "])["tags"] == ["é" * 40]


def test_put_and_patch_replace_the_whole_array(client, create_task):
    task = create_task(tags=["a", "b"])
    url = f"{TASKS}/{task['id']}"
    assert client.patch(url, json={"tags": ["c"]}, headers=bearer()).json["tags"] == ["c"]
    assert client.put(url, json={"title": "kept tags"}, headers=bearer()).json["tags"] == ["c"]
    assert client.put(url, json={"tags": []}, headers=bearer()).json["tags"] == []
    assert listed_titles(client, "tag=c") == []
    assert client.get(TAGS, headers=bearer()).json == []


def test_tag_filter_needs_every_tag_and_ignores_case(client, create_task):
    create_task(title="both", tags=["Work", "Urgent"])
    create_task(title="work only", tags=["work"])
    create_task(title="urgent only", tags=["URGENT"])
    create_task(title="none")
    assert listed_titles(client, "tag=WORK") == ["work only", "both"]
    assert listed_titles(client, "tag=urgent,work") == ["both"]
    assert listed_titles(client, "tag=%20urgent%20,%20WORK") == ["both"]
    assert listed_titles(client, "tag=work,work") == ["work only", "both"]
    assert listed_titles(client, "tag=holiday") == []
    assert listed_titles(client, "tag=") == ["none", "urgent only", "work only", "both"]


def test_tag_filter_matches_unicode_case_folding(client, create_task):
    create_task(title="street", tags=["Straße"])
    assert listed_titles(client, "tag=STRASSE") == ["street"]
    assert listed_titles(client, "tag=stra%C3%9Fe") == ["street"]


def test_tag_filter_combines_with_status_search_sort_and_pages(client, create_task):
    for n in range(12):
        create_task(
            title=f"{'report' if n % 2 else 'call'} {n:02d}",
            completed=n % 3 == 0,
            tags=["work"] if n % 4 else ["home"],
        )
    expected = [
        f"report {n:02d}" for n in range(12) if n % 2 and n % 3 != 0 and n % 4
    ]  # pending, "report", tagged work
    query = "tag=work&status=pending&q=report&sort=title&limit=2"
    titles, url = [], f"{TASKS}?{query}"
    while url:
        response = client.get(url, headers=bearer())
        assert response.status_code == 200, response.json
        assert response.headers["X-Total-Count"] == str(len(expected))
        titles += [task["title"] for task in response.json]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        if url:
            assert "tag=work" in url
    assert titles == expected


def test_a_cursor_is_bound_to_its_tag_filter(client, create_task):
    for _ in range(3):
        create_task(tags=["a", "b"])
    link = client.get(f"{TASKS}?tag=a&limit=1", headers=bearer()).headers["Link"]
    cursor = link[link.index("cursor=") + 7 : link.index(">")]
    same_filter = client.get(f"{TASKS}?tag=A&limit=1&cursor={cursor}", headers=bearer())
    assert same_filter.status_code == 200
    other_filter = client.get(f"{TASKS}?tag=b&limit=1&cursor={cursor}", headers=bearer())
    assert other_filter.status_code == 400
    assert "cursor" in other_filter.json["errors"]


@pytest.mark.parametrize(
    "value", ["a,,b", ",", "x" * 41, "tab%09x", "nul%00", ",".join(f"t{n}" for n in range(21))]
)
def test_bad_tag_filter_is_400(client, value):
    response = client.get(f"{TASKS}?tag={value}", headers=bearer())
    assert response.status_code == 400
    assert "tag" in response.json["errors"]


def test_tag_list_counts_and_sorts_case_insensitively(client, create_task):
    create_task(tags=["work", "Zeta"])
    create_task(tags=["Work", "alpha"])
    create_task(tags=["home"])
    create_task("bob", tags=["work", "bobs"])
    response = client.get(TAGS, headers=bearer())
    assert response.status_code == 200
    assert response.json == [
        {"name": "alpha", "count": 1},
        {"name": "home", "count": 1},
        {"name": "work", "count": 2},  # one spelling for all: the oldest task's
        {"name": "Zeta", "count": 1},
    ]


def test_deleting_a_task_removes_its_tags_from_the_list(client, create_task):
    task = create_task(tags=["gone"])
    create_task(tags=["kept"])
    client.delete(f"{TASKS}/{task['id']}", headers=bearer())
    assert client.get(TAGS, headers=bearer()).json == [{"name": "kept", "count": 1}]


def test_rename_changes_every_task_and_its_etag(client, create_task):
    first = create_task(tags=["a", "work", "b"])
    second = create_task(tags=["Work"])
    other = create_task(tags=["home"])
    response = client.patch(f"{TAGS}/WORK", json={"name": " job "}, headers=bearer())
    assert response.status_code == 200
    assert response.json == {"name": "job", "count": 2}
    for task, tags in ((first, ["a", "job", "b"]), (second, ["job"])):
        now = client.get(f"{TASKS}/{task['id']}", headers=bearer())
        assert now.json["tags"] == tags
        assert now.headers["ETag"] != f'"{task["id"]}.1"'
        assert now.json["updated_at"] > task["updated_at"]
    untouched = client.get(f"{TASKS}/{other['id']}", headers=bearer())
    assert untouched.json == other
    assert untouched.headers["ETag"] == f'"{other["id"]}.1"'
    assert listed_titles(client, "tag=work") == []
    assert len(listed_titles(client, "tag=job")) == 2


def test_rename_merges_where_a_task_has_both(client, create_task):
    both = create_task(tags=["x", "home", "y", "House"])
    house_only = create_task(tags=["house"])
    response = client.patch(f"{TAGS}/house", json={"name": "Home"}, headers=bearer())
    assert response.json == {"name": "Home", "count": 2}
    assert client.get(f"{TASKS}/{both['id']}", headers=bearer()).json["tags"] == ["x", "Home", "y"]
    assert client.get(f"{TASKS}/{house_only['id']}", headers=bearer()).json["tags"] == ["Home"]
    assert {"name": "Home", "count": 2} in client.get(TAGS, headers=bearer()).json


def test_rename_into_a_tag_spelled_otherwise_spells_it_as_asked_everywhere(client, create_task):
    spelled_otherwise = create_task(tags=["New"])
    renamed = create_task(tags=["old"])
    response = client.patch(f"{TAGS}/old", json={"name": "new"}, headers=bearer())
    assert response.json == {"name": "new", "count": 2}
    for task in (spelled_otherwise, renamed):
        assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json["tags"] == ["new"]
    assert client.patch(f"{TAGS}/old", json={"name": "x"}, headers=bearer()).status_code == 404


def test_rename_to_another_spelling_of_the_same_name(client, create_task):
    task = create_task(tags=["work"])
    response = client.patch(f"{TAGS}/work", json={"name": "Work"}, headers=bearer())
    assert response.json == {"name": "Work", "count": 1}
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json["tags"] == ["Work"]
    same = client.patch(f"{TAGS}/work", json={"name": "Work"}, headers=bearer())
    assert same.status_code == 200
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).headers["ETag"] == (
        f'"{task["id"]}.2"'  # written once: the second rename changed nothing
    )


def test_delete_removes_the_tag_from_every_task(client, create_task):
    first = create_task(tags=["a", "Old"])
    second = create_task(tags=["old"])
    response = client.delete(f"{TAGS}/OLD", headers=bearer())
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"{TASKS}/{first['id']}", headers=bearer()).json["tags"] == ["a"]
    second_now = client.get(f"{TASKS}/{second['id']}", headers=bearer())
    assert second_now.json["tags"] == []
    assert second_now.headers["ETag"] == f'"{second["id"]}.2"'
    assert client.get(TAGS, headers=bearer()).json == [{"name": "a", "count": 1}]
    assert client.delete(f"{TAGS}/old", headers=bearer()).status_code == 404


@pytest.mark.parametrize("tag", ["a/b", "50% off", "ünï code", "#1 ?&=+"])
def test_names_in_the_url_are_percent_encoded(client, create_task, tag):
    from urllib.parse import quote

    task = create_task(tags=[tag])
    url = f"{TAGS}/{quote(tag.upper(), safe='')}"
    response = client.patch(url, json={"name": "renamed"}, headers=bearer())
    assert response.status_code == 200, response.json
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json["tags"] == ["renamed"]
    assert client.delete(f"{TAGS}/renamed", headers=bearer()).status_code == 204


@pytest.mark.parametrize("name", ["unknown", "x" * 41, "%20", "a,b"])
def test_unknown_tags_are_404(client, create_task, name):
    create_task(tags=["known"])
    for response in (
        client.patch(f"{TAGS}/{name}", json={"name": "new"}, headers=bearer()),
        client.delete(f"{TAGS}/{name}", headers=bearer()),
    ):
        assert_problem(response, 404)
    assert client.get(TAGS, headers=bearer()).json == [{"name": "known", "count": 1}]


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "a,b"}, {"name": "x" * 41}, {"name": 3}, {"name": "ok", "x": 1}],
)
def test_bad_rename_bodies_are_400(client, create_task, body):
    task = create_task(tags=["work"])
    response = client.patch(f"{TAGS}/work", json=body, headers=bearer())
    assert response.status_code == 400
    assert response.json["errors"]
    assert client.get(f"{TASKS}/{task['id']}", headers=bearer()).json == task


def test_another_users_tags_are_never_touched(client, create_task):
    bobs = create_task("bob", tags=["work"])
    assert client.get(TAGS, headers=bearer()).json == []
    assert client.patch(f"{TAGS}/work", json={"name": "x"}, headers=bearer()).status_code == 404
    assert client.delete(f"{TAGS}/work", headers=bearer()).status_code == 404
    assert client.get(f"/api/bob/tasks/{bobs['id']}", headers=bearer("bob")).json == bobs
    assert client.get(TASKS + "?tag=work", headers=bearer()).json == []


def test_concurrent_renames_and_task_writes_keep_the_tag_index_true(app, client, create_task):
    """Tags are stored on the task and in task_tags: whatever interleaves, the two agree."""
    tasks = [create_task(tags=["a", "b"]) for _ in range(6)]

    def work(n):
        test_client = app.test_client()
        if n % 4 == 0:
            old, new = ("a", "b") if n % 8 else ("b", "a")
            return test_client.patch(f"{TAGS}/{old}", json={"name": new}, headers=bearer())
        if n % 4 == 1:
            return test_client.delete(f"{TAGS}/c", headers=bearer())
        task = tasks[n % len(tasks)]
        tags = [["a"], ["b", "c"], ["C", "a", "b"], []][n % 4 - 2 + (n // 8) % 3]
        return test_client.patch(f"{TASKS}/{task['id']}", json={"tags": tags}, headers=bearer())

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = {response.status_code for response in pool.map(work, range(96))}
    assert statuses <= {200, 204, 404}, statuses
    listed = client.get(f"{TASKS}?limit=500", headers=bearer()).json
    with app.app_context():
        rows = db.session.execute(select(TaskTag.task_id, TaskTag.name)).all()
    assert sorted(rows) == sorted((task["id"], tag) for task in listed for tag in task["tags"])
    expected = Counter(folded(tag) for task in listed for tag in task["tags"])
    counted = {folded(tag["name"]): tag["count"] for tag in client.get(TAGS, headers=bearer()).json}
    assert counted == expected
