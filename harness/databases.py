"""Throwaway PostgreSQL databases and migrating them, for the tests and the benchmarks.

Never imported by the app itself.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def fresh_postgres_database(server_url: str, prefix: str = "taskapi_test") -> Iterator[str]:
    """Create a new database on the server at ``server_url``; yield its URL; drop it."""
    server = make_url(server_url).set(drivername="postgresql+psycopg2")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def upgrade_with_cli(env: Mapping[str, str]) -> None:
    """Migrate ``env``'s DATABASE_URL the way a deployment does: ``flask db upgrade``."""
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "taskapi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
