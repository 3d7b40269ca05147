"""Database helpers: SQLite connection settings, and inserts that ignore conflicts."""

import sqlite3

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from .extensions import db


@event.listens_for(Engine, "connect")
def configure_sqlite(dbapi_connection, _record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # SQLite's lower() folds ASCII only; case-insensitive search (q) needs all of Unicode.
    dbapi_connection.create_function("lower", 1, unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked.
    cursor.execute("PRAGMA foreign_keys = ON")
    # WAL lets readers proceed while a gunicorn worker writes.
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


def insert(model):
    """An INSERT that supports ``on_conflict_do_nothing`` on PostgreSQL and SQLite."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(model)
