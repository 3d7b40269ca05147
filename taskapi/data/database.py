"""The database policy, in one place: engine options, connection hooks, the statement
time limit, ``statement_connection()`` for a statement and ``atomic()`` for
statements that must commit together (docs/design.md)."""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app
from sqlalchemy import Connection, event, exc
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db

CONNECT_TIMEOUT_SECONDS = 10
DEFAULT_POOL_SIZE = 10
# Serverless PostgreSQL (Neon) closes connections that sat idle; a connection
# unused for longer than this is checked with a ping before it is handed out.
IDLE_PING_SECONDS = 30
# An execution option that lifts the statement timeout (migrations: building
# an index on a big table may take longer, and nobody waits on a request).
NO_STATEMENT_TIMEOUT = "taskapi_no_statement_timeout"


def init_database(app: Flask) -> None:
    """Bind Flask-SQLAlchemy to ``app`` with this module's engine options and hooks."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    timeout = app.config.get("DATABASE_STATEMENT_TIMEOUT", 0)
    pool_size = app.config.get("DATABASE_POOL_SIZE", DEFAULT_POOL_SIZE)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(url, timeout, pool_size) | {
        **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
        # Not negotiable: writes commit by themselves (views never commit),
        # and no values appear in database errors.
        **REQUIRED_ENGINE_OPTIONS,
    }
    db.init_app(app)
    with app.app_context():
        engine = db.engine  # made by init_app; no connection is opened yet
    forget_pool_after_fork(engine)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", configure_sqlite)
    else:
        event.listen(engine, "checkin", remember_checkin)
        event.listen(engine, "checkout", ping_if_idle)
        if timeout:
            listen_for_statement_timeout(engine, timeout)


def forget_pool_after_fork(engine) -> None:
    """A forked process (a gunicorn worker of the preloading master) starts with an
    empty pool: a connection the parent opened stays the parent's (SQLAlchemy's
    recipe for os.fork, ``dispose(close=False)``)."""
    engine_ref = weakref.ref(engine)  # an app dropped (in the tests) lets its engine go

    def forget() -> None:
        engine = engine_ref()
        if engine is not None:
            engine.dispose(close=False)

    os.register_at_fork(after_in_child=forget)


REQUIRED_ENGINE_OPTIONS = {
    "isolation_level": "AUTOCOMMIT",
    # Errors (and so logs) show SQL but never the values: no password hashes, no text.
    "hide_parameters": True,
}


def engine_options(
    database_url: str, statement_timeout: float = 0, pool_size: int = DEFAULT_POOL_SIZE
) -> dict:
    """A bounded connect time (and lock wait), a bounded pool, and checks for
    connections the server dropped."""
    if database_url.startswith("sqlite"):
        # timeout is SQLite's busy timeout: writers wait for the lock instead of failing.
        return {"connect_args": {"timeout": statement_timeout or CONNECT_TIMEOUT_SECONDS}}
    return {
        # Instead of pool_pre_ping (a round trip on every checkout), connections
        # idle for a while are pinged (ping_if_idle), and all are renewed hourly.
        "pool_recycle": 3600,
        # Exactly pool_size connections per worker (no overflow), so the
        # database's connection count is workers x pool_size at most. A request
        # waits up to the connect limit for a free one, then gets 503.
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": CONNECT_TIMEOUT_SECONDS,
        "connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    }


@contextmanager
def atomic() -> Iterator[None]:
    """Run the block's statements as one transaction: all of them commit, or none.

    Whatever the session did before the block has committed already (outside
    a block every statement does), so the block starts a transaction of its
    own. A block inside a block joins the outer one: it commits with it, and
    an error in it rolls back all of the outer block.
    """
    session = db.session()  # the request's session, not the scoped proxy
    if session.info.get(ATOMIC_DEPTH, 0):
        session.info[ATOMIC_DEPTH] += 1
        try:
            yield
        finally:
            session.info[ATOMIC_DEPTH] -= 1
        return
    if session.in_transaction():
        session.commit()
    if db.engine.dialect.name == "sqlite":
        # Takes the database's write lock at once, so a transaction that reads
        # and then writes never fails halfway with "database is locked".
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    else:
        # Each write takes its row locks: concurrent writers of a row wait in turn.
        connection = session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        timeout = current_app.config.get("DATABASE_STATEMENT_TIMEOUT")
        if timeout:  # once for the whole transaction (its statements go without)
            connection.exec_driver_sql(statement_timeout_prefix(timeout))
    session.info[ATOMIC_DEPTH] = 1
    session.info[TRANSACTION_STATE] = {}
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info[ATOMIC_DEPTH] = 0
        del session.info[TRANSACTION_STATE]


@contextmanager
def statement_connection() -> Iterator[Connection]:
    """The connection to run a read, or a write that stands alone, on.

    Inside a transaction (``atomic()``, or after the session began one), the
    session's, so the statement sees and joins what the transaction did.
    Otherwise one from the pool for just this statement: it commits by itself
    (AUTOCOMMIT) and needs none of the session's bookkeeping. Either way a
    request holds one connection at a time. Writes that belong together use
    ``atomic()`` and the session's connection.
    """
    if db.session.registry.has() and db.session().in_transaction():
        yield db.session.connection()
    else:
        with db.engine.connect() as pooled:
            yield pooled


ATOMIC_DEPTH = "taskapi.atomic_depth"
TRANSACTION_STATE = "taskapi.transaction_state"


def transaction_state() -> dict | None:
    """What the current ``atomic()`` block remembers until it ends; None outside one."""
    if not db.session.registry.has():
        return None  # no session yet, so no block: and none is made just to ask
    return db.session().info.get(TRANSACTION_STATE)


def statement_timeout_prefix(seconds: float) -> str:
    milliseconds = max(1, round(seconds * 1000))
    return (
        f"SET LOCAL statement_timeout = {milliseconds}; SET LOCAL lock_timeout = {milliseconds}; "
    )


def listen_for_statement_timeout(engine, seconds: float) -> None:
    """Send every statement of ``engine`` that runs by itself with its time limit in front.

    Done where the dialect hands the statement to the cursor, after SQLAlchemy's
    own events: those (and error messages) keep showing the statement itself.
    Statements in a transaction go as they are: ``atomic()`` set the limit for
    the whole transaction when it began (and migrations have none).
    """
    prefix = statement_timeout_prefix(seconds)

    def limited(context) -> bool:
        return context.cursor.connection.autocommit and not context.execution_options.get(
            NO_STATEMENT_TIMEOUT
        )

    def execute(cursor, statement, parameters, context):
        if limited(context):
            cursor.execute(prefix + statement, parameters)
            return True
        return False

    def execute_no_params(cursor, statement, context):
        if limited(context):
            cursor.execute(prefix + statement)
            return True
        return False

    def executemany(cursor, statement, parameters, context):
        if limited(context):
            cursor.executemany(prefix + statement, parameters)
            return True
        return False

    event.listen(engine, "do_execute", execute)
    event.listen(engine, "do_execute_no_params", execute_no_params)
    event.listen(engine, "do_executemany", executemany)


@contextmanager
def migration_transaction(connection: Connection) -> Iterator[None]:
    """Prepare ``connection`` so that Alembic runs all migrations as one transaction.

    On SQLite, foreign keys are off meanwhile (batch migrations rebuild a
    table by dropping it, which would cascade into the rows that refer to
    it) and are checked before the commit, then turned back on. If anything
    fails, the connection is thrown away rather than returned to the pool
    with foreign keys off.
    """
    if connection.dialect.name != "sqlite":
        connection.execution_options(
            isolation_level="READ COMMITTED", **{NO_STATEMENT_TIMEOUT: True}
        )
        yield
        return
    try:
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")  # only outside a transaction
        connection.commit()
        event.listen(connection, "begin", begin_immediately)
        yield
        event.remove(connection, "begin", begin_immediately)
        connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        connection.commit()
    except BaseException:
        connection.invalidate()
        raise


def begin_immediately(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def check_foreign_keys(connection: Connection) -> None:
    """Fail (and so roll back) a SQLite migration that left a dangling reference."""
    if connection.dialect.name == "sqlite":
        dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if dangling:
            raise RuntimeError(f"the migration broke foreign keys: {dangling[:5]}")


def configure_sqlite(dbapi_connection: sqlite3.Connection, _record) -> None:
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


def remember_checkin(_dbapi_connection, record) -> None:
    record.info["checked_in_at"] = time.monotonic()


def ping_if_idle(dbapi_connection, record, _proxy) -> None:
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


def dialect_insert(table):
    """An INSERT that supports ``on_conflict_do_nothing`` on PostgreSQL and SQLite."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
