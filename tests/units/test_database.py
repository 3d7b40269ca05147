"""The database policy (taskapi.data.database): autocommit statements, atomic() blocks."""

from __future__ import annotations

import os

import flask_migrate
import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from taskapi.data.database import atomic, configure_sqlite, ping_if_idle
from taskapi.data.models import User
from taskapi.extensions import db

from ..helpers import TASKS, bearer


def count_users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_a_single_statement_commits_by_itself(app):
    with app.app_context():
        db.session.execute(insert(User).values(id="solo"))
        db.session.rollback()  # nothing left to undo: the INSERT has committed
    assert count_users(app) == 1


def test_atomic_commits_every_statement_together(app):
    with app.app_context(), atomic():
        db.session.execute(insert(User).values(id="one"))
        db.session.execute(insert(User).values(id="two"))
    assert count_users(app) == 2


def test_atomic_rolls_back_every_statement_on_error(app):
    with app.app_context(), pytest.raises(RuntimeError), atomic():
        db.session.execute(insert(User).values(id="one"))
        db.session.execute(insert(User).values(id="two"))
        raise RuntimeError("the third step failed")
    assert count_users(app) == 0


def test_atomic_keeps_what_came_before_it(app):
    with app.app_context():
        db.session.execute(insert(User).values(id="before"))
        with pytest.raises(RuntimeError), atomic():
            db.session.execute(insert(User).values(id="inside"))
            raise RuntimeError("undo only the block")
    assert count_users(app) == 1


def test_a_block_inside_a_block_joins_it(app):
    with app.app_context(), pytest.raises(RuntimeError), atomic():
        db.session.execute(insert(User).values(id="outer"))
        with atomic():
            db.session.execute(insert(User).values(id="inner"))
        raise RuntimeError("the outer block fails after the inner one ended")
    assert count_users(app) == 0


def test_an_error_in_an_inner_block_rolls_back_the_outer_one(app):
    with app.app_context(), pytest.raises(RuntimeError), atomic():
        db.session.execute(insert(User).values(id="outer"))
        with atomic():
            raise RuntimeError("inner")
    assert count_users(app) == 0
    with app.app_context(), atomic():  # and the next block starts afresh
        db.session.execute(insert(User).values(id="after"))
    assert count_users(app) == 1


def test_engine_options_from_config_keep_autocommit(make_app, tmp_path):
    app = make_app(
        f"sqlite:///{tmp_path / 'options.sqlite3'}",
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 30}, "isolation_level": None},
    )
    with app.app_context():
        flask_migrate.upgrade()
    client = app.test_client()
    headers = bearer()
    assert client.post(TASKS, json={"title": "kept"}, headers=headers).status_code == 201
    assert [t["title"] for t in client.get(TASKS, headers=headers).json] == ["kept"]


def test_hooks_are_on_this_apps_engine_only(app):
    assert not event.contains(Engine, "connect", configure_sqlite)
    assert not event.contains(Pool, "checkout", ping_if_idle)
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        assert event.contains(engine, "connect", configure_sqlite)
    else:  # the pool's listeners, which survive engine.dispose() (a new pool)
        assert ping_if_idle in list(engine.pool.dispatch.checkout)


def test_foreign_keys_are_on_after_migrating_sqlite(make_app, tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'fk.sqlite3'}")
    with app.app_context():
        flask_migrate.upgrade()  # runs with foreign keys off, on a pooled connection
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_a_forked_process_starts_with_an_empty_pool(app):
    """A gunicorn worker forked from the preloading master never shares a
    connection the master opened: it would be two processes on one socket."""
    with app.app_context():
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        pooled = db.engine.pool.checkedin()
        assert pooled >= 1
        child = os.fork()
        if child == 0:  # the child: exit status 0 only with nothing inherited in the pool
            os._exit(0 if db.engine.pool.checkedin() == 0 else 1)
        _pid, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert db.engine.pool.checkedin() == pooled  # the parent's stay usable
