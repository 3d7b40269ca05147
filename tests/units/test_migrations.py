"""Flask-Migrate owns the schema: migrations build it from nothing and match the models."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, inspect, text

from taskapi.extensions import db

from ..helpers import (
    BACKENDS,
    CHANGES,
    TAGS,
    TASKS,
    TRASH,
    bearer,
    build_app,
    dispose,
    fresh_database,
    push_subscription,
)


@pytest.fixture(params=BACKENDS)
def empty_app(request, tmp_path):
    with fresh_database(request.param, tmp_path) as url:
        app = build_app(url)
        yield app
        dispose(app)


def schema_differences(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), db.metadata)


def test_upgrade_from_empty_to_head_matches_the_models(empty_app):
    with empty_app.app_context():
        assert inspect(db.engine).get_table_names() == []
        flask_migrate.upgrade()
        tables = set(inspect(db.engine).get_table_names())
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("tasks")}
    assert {"users", "tasks", "alembic_version"} <= tables
    assert "ix_tasks_user_id_created_at_id" in indexes
    assert schema_differences(empty_app) == []


def test_downgrade_to_base_and_back(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade()
    assert schema_differences(empty_app) == []


def test_task_foreign_key_cascades(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
        (foreign_key,) = inspect(db.engine).get_foreign_keys("tasks")
    assert foreign_key["referred_table"] == "users"
    assert foreign_key["options"].get("ondelete") == "CASCADE"


BROKEN_REVISION = '''"""leaves a task whose user does not exist

Revision ID: broken
Revises: {head}
"""

from alembic import op

revision = "broken"
down_revision = "{head}"


def upgrade():
    op.create_table("made_by_the_broken_revision", sa_column())
    op.execute("INSERT INTO tasks (user_id, title) VALUES ('nobody', 'dangling')")


def sa_column():
    import sqlalchemy as sa

    return sa.Column("id", sa.Integer, primary_key=True)
'''


def test_a_sqlite_migration_that_breaks_foreign_keys_changes_nothing(make_app, tmp_path):
    migrations = tmp_path / "migrations"
    shutil.copytree(Path(__file__).resolve().parents[2] / "migrations", migrations)
    with make_app(f"sqlite:///{tmp_path / 'broken.sqlite3'}").app_context():
        flask_migrate.upgrade(directory=str(migrations))
        head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        (migrations / "versions" / "9999_broken.py").write_text(
            BROKEN_REVISION.replace("{head}", head)
        )
        with pytest.raises(SystemExit):  # Flask-Migrate's answer to the check's RuntimeError
            flask_migrate.upgrade(directory=str(migrations))
        assert db.session.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        assert "made_by_the_broken_revision" not in inspect(db.engine).get_table_names()
        assert db.session.execute(text("SELECT count(*) FROM tasks")).scalar() == 0
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def check_constraints(app) -> dict:
    with app.app_context():
        found = {}
        for table in db.metadata.sorted_tables:
            for constraint in inspect(db.engine).get_check_constraints(table.name):
                found[constraint["name"]] = " ".join(constraint["sqltext"].split())
        return found


def test_check_constraints_are_the_models(empty_app):
    """compare_metadata skips CHECK constraints: a change to PRIORITIES needs a migration."""
    with empty_app.app_context():
        flask_migrate.upgrade()
    in_database = check_constraints(empty_app)
    in_models = {
        constraint.name: str(constraint.sqltext)
        for table in db.metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    assert set(in_database) == set(in_models)
    for name, sql in in_models.items():
        # PostgreSQL rewrites "x BETWEEN 0 AND 2" as "(x >= 0) AND (x <= 2)": compare the numbers.
        assert re.findall(r"\d+", in_database[name]) == re.findall(r"\d+", sql), name


def seeded_before(app, revision: str, *rows: str) -> None:
    """Migrate an empty database to ``revision``, the one before the revision under
    test; write alice and ``rows`` (INSERTs) there; then migrate to head."""
    with app.app_context():
        flask_migrate.upgrade(revision=revision)
        db.session.execute(text("INSERT INTO users (id) VALUES ('alice')"))
        for row in rows:
            db.session.execute(text(row))
        db.session.commit()
        flask_migrate.upgrade()


def downgraded_to(app, revision: str, query: str) -> tuple[set[str], set[str], list[tuple]]:
    """Migrate down to ``revision``; return the tables, the columns of tasks and the
    rows ``query`` finds there."""
    with app.app_context():
        flask_migrate.downgrade(revision=revision)
        tables = set(inspect(db.engine).get_table_names())
        columns = {column["name"] for column in inspect(db.engine).get_columns("tasks")}
        rows = [tuple(row) for row in db.session.execute(text(query))]
        db.session.commit()
    return tables, columns, rows


def upgraded_again(app) -> None:
    with app.app_context():
        flask_migrate.upgrade()
    assert schema_differences(app) == []


def test_0003_up_and_down_with_data_in_the_tables(empty_app):
    """Existing tasks get tags = [] and null new fields; going down keeps every task."""
    client = empty_app.test_client()
    seeded_before(
        empty_app,
        "0002",
        "INSERT INTO tasks (user_id, title, due_at, created_at, updated_at) "
        "VALUES ('alice', 'old', '2027-01-04 09:00:00+00:00', "
        "'2026-11-26 07:00:00+00:00', '2026-11-26 07:00:00+00:00')",
    )
    (old,) = client.get(TASKS, headers=bearer()).json
    assert (old["title"], old["tags"]) == ("old", [])
    new_fields = ("recurrence", "time_zone", "series_id", "remind_at")
    assert [old[field] for field in new_fields] == [None] * 4
    tagged = client.patch(
        f"{TASKS}/{old['id']}",
        json={"tags": ["work"], "recurrence": "FREQ=DAILY", "remind_at": "2027-01-04T08:00:00Z"},
        headers=bearer(),
    )
    assert tagged.status_code == 200, tagged.json
    done = client.patch(f"{TASKS}/{old['id']}/complete", headers=bearer())
    assert "next-occurrence" in done.headers["Link"]

    tables, columns, rows = downgraded_to(
        empty_app, "0002", "SELECT title, completed FROM tasks ORDER BY id"
    )
    assert "task_tags" not in tables
    assert not columns & {"tags", *new_fields}
    assert rows == [("old", True), ("old", False)]
    if "sqlite" in empty_app.config["SQLALCHEMY_DATABASE_URI"]:  # ids are still never reused
        with empty_app.app_context():
            table_sql = db.session.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'tasks'")
            ).scalar()
        assert "AUTOINCREMENT" in table_sql

    upgraded_again(empty_app)
    listed = client.get(TASKS, headers=bearer()).json
    assert [(task["title"], task["tags"], task["series_id"]) for task in listed] == [
        ("old", [], None),
        ("old", [], None),
    ]
    assert client.get(TAGS, headers=bearer()).json == []


def test_0004_up_and_down_with_data_in_the_tables(empty_app):
    """Existing tasks are live and in the feed; going down brings trashed tasks back."""
    client = empty_app.test_client()
    seeded_before(
        empty_app,
        "0003",
        "INSERT INTO tasks (user_id, title, tags, created_at, updated_at) VALUES "
        "('alice', 'old', '[\"work\"]', '2026-11-26 07:00:00+00:00', "
        "'2026-11-26 07:00:00+00:00')",
        "INSERT INTO task_tags SELECT id, 'work', 'alice', 'work' FROM tasks",
    )
    (old,) = client.get(TASKS, headers=bearer()).json
    assert old["title"] == "old"
    feed = client.get(CHANGES, headers=bearer()).json
    assert [change["id"] for change in feed["changes"]] == [old["id"]]
    trashed = client.post(TASKS, json={"title": "trashed", "tags": ["Home"]}, headers=bearer()).json
    erased = client.post(TASKS, json={"title": "erased"}, headers=bearer()).json
    for task in (trashed, erased):
        client.delete(f"{TASKS}/{task['id']}", headers=bearer())
    client.delete(f"{TRASH}/{erased['id']}", headers=bearer())
    since = client.get(f"{CHANGES}?since={feed['next']}", headers=bearer()).json
    assert {change["id"] for change in since["changes"]} == {trashed["id"], erased["id"]}

    tables, columns, rows = downgraded_to(empty_app, "0003", "SELECT title FROM tasks ORDER BY id")
    assert "tombstones" not in tables
    assert not columns & {"deleted_at", "change_number"}
    assert rows == [("old",), ("trashed",)]

    upgraded_again(empty_app)
    listed = client.get(TASKS, headers=bearer()).json
    assert sorted(task["title"] for task in listed) == ["old", "trashed"]
    assert client.get(TAGS, headers=bearer()).json == [
        {"name": "Home", "count": 1},
        {"name": "work", "count": 1},
    ]
    assert [t["title"] for t in client.get(f"{TASKS}?tag=home", headers=bearer()).json] == [
        "trashed"
    ]


def test_0005_up_and_down_with_data_in_the_tables(empty_app):
    """Existing tasks keep their reminders; going down drops subscriptions and deliveries only."""
    client = empty_app.test_client()
    with empty_app.app_context():
        flask_migrate.upgrade(revision="0004")
        db.session.execute(text("INSERT INTO users (id) VALUES ('alice')"))
        db.session.execute(
            text(
                "INSERT INTO tasks (user_id, title, remind_at, created_at, updated_at) VALUES "
                "('alice', 'old', '2027-01-04 08:00:00+00:00', '2026-11-26 07:00:00+00:00', "
                "'2026-11-26 07:00:00+00:00')"
            )
        )
        db.session.commit()
        flask_migrate.upgrade()
    (old,) = client.get("/api/alice/tasks", headers=bearer()).json
    assert old["remind_at"] == "2027-01-04T08:00:00Z"
    subscribed = client.post(
        "/api/alice/push/subscriptions", json=push_subscription(), headers=bearer()
    )
    assert subscribed.status_code == 201
    with empty_app.app_context():
        db.session.execute(
            text(
                "INSERT INTO push_deliveries (task_id, remind_at, subscription_id, attempts, "
                "outcome, created_at) VALUES (:task, '2027-01-04 08:00:00+00:00', :subscription, "
                "1, 'sent', '2027-01-04 08:00:01+00:00')"
            ),
            {"task": old["id"], "subscription": subscribed.json["id"]},
        )
        db.session.commit()
        flask_migrate.downgrade(revision="0004")
        tables = set(inspect(db.engine).get_table_names())
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("tasks")}
        db.session.commit()
    assert not tables & {"push_subscriptions", "push_deliveries"}
    assert "ix_tasks_remind_at_id" not in indexes

    with empty_app.app_context():
        flask_migrate.upgrade()
    assert schema_differences(empty_app) == []
    assert [task["title"] for task in client.get("/api/alice/tasks", headers=bearer()).json] == [
        "old"
    ]
    assert client.get("/api/alice/push/subscriptions", headers=bearer()).json == []
