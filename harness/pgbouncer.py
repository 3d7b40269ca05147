"""A real PgBouncer in front of the test PostgreSQL, in transaction-pooling mode.

``with pgbouncer(server_url) as url:`` starts PgBouncer (the Debian package)
on a free loopback port, pointing at the server of ``server_url`` (any
database name passes through), and yields ``server_url`` rewritten to go
through it. In transaction mode each transaction may run on another server
connection, as on Neon's pooled endpoint or a PaaS's PgBouncer: a session's
``SET`` does not follow the client, and the ``options`` startup parameter is
refused. Other keyword arguments are more ``[pgbouncer]`` settings
(``query_wait_timeout=2``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from sqlalchemy.engine import make_url

from harness.gunicorn import free_port, stop, wait_for_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@contextmanager
def pgbouncer(
    server_url: str, *, pool_size: int = 10, pool_mode: str = "transaction", **settings
) -> Iterator[str]:
    server = make_url(server_url)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    (folder / "userlist.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={server.host or "127.0.0.1"} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = {folder / "pgbouncer.log"}
"""
        + "".join(f"{name} = {value}\n" for name, value in settings.items())
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        shutil.chown(folder, "postgres")
        for path in folder.iterdir():
            shutil.chown(path, "postgres")
        command[1:1] = ["-u", "postgres"]
    output = (folder / "output.log").open("wb")
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, "PgBouncer", partial(read_logs, process, folder))
        through = server.set(drivername="postgresql+psycopg2", host="127.0.0.1", port=port)
        yield through.render_as_string(hide_password=False)
    finally:
        stop(process, signal.SIGINT, timeout=10)  # SIGINT: PgBouncer's immediate shutdown
        output.close()
        shutil.rmtree(folder, ignore_errors=True)


def read_logs(process: subprocess.Popen, folder: Path) -> str:
    log = folder / "pgbouncer.log"
    output = process.stdout.read().decode(errors="replace") if process.poll() is not None else ""
    return output + (log.read_text() if log.exists() else "")
