"""Database helpers: connection settings, idle-connection pings, explicit transactions.

On PostgreSQL every statement commits by itself (see ``config.engine_options``);
``begin_transaction`` groups statements where atomicity needs it.
"""

import sqlite3
import time

from sqlalchemy import event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from .extensions import db

# Serverless PostgreSQL (Neon) closes connections that sat idle; a connection
# unused for longer than this is checked with a ping before it is handed out.
IDLE_PING_SECONDS = 30


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


@event.listens_for(Pool, "checkin")
def remember_checkin(_dbapi_connection, record) -> None:
    record.info["checked_in_at"] = time.monotonic()


@event.listens_for(Pool, "checkout")
def ping_if_idle(dbapi_connection, record, _proxy) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        return
    checked_in_at = record.info.get("checked_in_at")
    if checked_in_at is None or time.monotonic() - checked_in_at < IDLE_PING_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
    except Exception as error:
        # The pool discards this connection and checks out (or opens) another.
        raise exc.DisconnectionError("idle connection was closed by the server") from error


def begin_transaction() -> None:
    """Make the session's next statements one transaction (READ COMMITTED).

    Call it before the session's first statement. A no-op on SQLite, whose
    sessions are always transactional.
    """
    if db.engine.dialect.name == "postgresql":
        db.session.connection(execution_options={"isolation_level": "READ COMMITTED"})


def unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


def insert(model):
    """An INSERT that supports ``on_conflict_do_nothing`` on PostgreSQL and SQLite."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(model)
