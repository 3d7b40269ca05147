"""Per-connection settings for SQLite, the zero-configuration default database."""

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def configure_sqlite(dbapi_connection, _record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked.
    cursor.execute("PRAGMA foreign_keys = ON")
    # WAL lets readers proceed while a gunicorn worker writes.
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()
