"""Flask-Migrate owns the schema: migrations build it from nothing and match the models."""

from __future__ import annotations

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from taskapi.extensions import db

from .helpers import BACKENDS, build_app, dispose, fresh_database


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
