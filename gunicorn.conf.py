"""gunicorn settings: ``PORT`` and ``WEB_CONCURRENCY`` come from the environment.

Without ``PORT`` (local ``make run``) the server listens on 127.0.0.1:8000 only;
with it (a PaaS) on every interface, as the platform's router expects.

Each worker is a gevent worker: it serves many connections at once, so idle
or slow clients (a connection that sends nothing, headers a byte at a time)
hold only themselves up. docs/performance.md has the measurements that chose
it over sync and gthread workers.
"""

import os

_port = os.environ.get("PORT")
bind = f"0.0.0.0:{_port}" if _port else "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
# Connections one worker holds open at once; beyond them, the kernel's backlog.
worker_connections = 1000
# For gevent workers this is only a heartbeat: a worker that stops answering its
# master for 30 s is restarted. A request's time is bounded by the app (10 s to
# get a database connection, DATABASE_STATEMENT_TIMEOUT per statement).
timeout = 30
graceful_timeout = 20
# Platform routers keep connections open between requests.
keepalive = 5
# gunicorn's largest: a list's next link (query string plus cursor) must fit;
# the app refuses longer query strings itself (taskapi/http/routing.py).
limit_request_line = 8190
# Let the platform's router's X-Forwarded-* through only from itself.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Each worker imports the app itself, after gevent has patched the standard
# library: locks, sockets and the database pool made before the patch would
# block the whole worker instead of one request (gunicorn discourages
# preload_app with gevent for this reason).
preload_app = False

# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default,
# shared by every instance started from the same home: the last one started
# takes it over, and `gunicornc` then drives an instance it did not mean to.
# Signals (HUP, TERM, TTIN/TTOU) do all we need.
control_socket_disable = True


def post_fork(server, worker):
    if server.cfg.worker_class_str == "gevent":
        # psycopg2 waits on its sockets through gevent: a query blocks its request only.
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
