"""A real nginx (the Debian package) as a round-robin load balancer, for tests and benchmarks.

``with balancer([base_a, base_b]) as url:`` starts nginx in the foreground on
a free loopback port, proxying to the given ``http://127.0.0.1:PORT`` bases
in turn (one or more), and yields its own base URL. Each response names the
instance that answered in ``X-Upstream`` (for tests: which ones took part).
``UPSTREAM`` is the configuration that docs/scaling.md quotes. nginx and its
worker get a process group of their own, and both are gone afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from harness.gunicorn import free_port, wait_for_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# A connection refused or reset before a response moves the request on to the
# next instance, and that instance is left out for fail_timeout. nginx never
# resends a POST or PATCH it has already sent (they are not idempotent): the
# client gets a 502 and may retry with the same Idempotency-Key.
UPSTREAM = """\
upstream taskapi {
%(servers)s}
server {
    listen %(listen)s;
    location / {
        proxy_pass http://taskapi;
        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 2;
        proxy_connect_timeout 2s;
        proxy_read_timeout 35s;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
}
"""


@contextmanager
def balancer(bases: Sequence[str]) -> Iterator[str]:
    """nginx in front of the instances at ``bases``; yields its base URL."""
    servers = "".join(
        f"    server {urlsplit(base).netloc} max_fails=1 fail_timeout=5s;\n" for base in bases
    )
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="nginx-"))
    folder.chmod(0o755)  # the worker processes run as nobody when the master is root
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / name).mkdir(mode=0o777)
        (folder / name).chmod(0o777)
    server = UPSTREAM % {"servers": servers, "listen": f"127.0.0.1:{port}"}
    # Which instance answered (not in the excerpt docs/scaling.md quotes).
    answered_by = "        add_header X-Upstream $upstream_addr always;\n"
    server = server.replace("location / {\n", "location / {\n" + answered_by)
    (folder / "nginx.conf").write_text(
        f"""daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder / "client_body"};
    proxy_temp_path {folder / "proxy"};
    fastcgi_temp_path {folder / "fastcgi"};
    uwsgi_temp_path {folder / "uwsgi"};
    scgi_temp_path {folder / "scgi"};
{server}}}
"""
    )
    with (folder / "output.log").open("wb") as output:
        process = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", "stderr"],
            stdout=subprocess.DEVNULL,
            stderr=output,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, "nginx", partial(read_logs, folder))
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)  # nginx's fast shutdown, workers included
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def read_logs(folder: Path) -> str:
    logs = [folder / "output.log", folder / "error.log"]
    return "".join(path.read_text() for path in logs if path.exists())


def available() -> bool:
    return os.access(NGINX, os.X_OK)
