"""gunicorn settings: ``PORT`` and ``WEB_CONCURRENCY`` come from the environment.

Without ``PORT`` (local ``make run``) the server listens on 127.0.0.1:8000 only;
with it (a PaaS) on every interface, as the platform's router expects.

Each worker is a gevent worker: it serves many connections at once, so idle
or slow clients (a connection that sends nothing, headers a byte at a time)
hold only themselves up. docs/performance.md has the measurements that chose
it over sync and gthread workers.

The master patches the standard library for gevent first of all, then checks
the settings (a setting that cannot work stops gunicorn with one line) and
imports the app once; the workers it forks share those pages.
"""

# First, before anything creates a socket, a lock or an SSL context: everything
# made from here on (the app, its locks, its pools) is made for gevent. This is how
# gunicorn's documentation has preload_app work with gevent workers.
from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from gunicorn.workers import ggevent  # noqa: E402
from psycogreen.gevent import patch_psycopg  # noqa: E402

from taskapi.config import ConfigError, from_environment, refusal  # noqa: E402

# psycopg2 waits on its sockets through gevent: a query blocks its request only.
patch_psycopg()

# Names gunicorn does not read start with an underscore (gunicorn has a "config").
_ROOT = os.path.dirname(os.path.abspath(__file__))
try:
    # What create_app() reads (Flask's instance folder is next to this file).
    _settings = from_environment(os.path.join(_ROOT, "instance"))
except ConfigError as error:
    sys.exit(refusal(error, os.environ))

_port = os.environ.get("PORT")
bind = f"0.0.0.0:{_port}" if _port else "127.0.0.1:8000"
workers = _settings["WEB_CONCURRENCY"]


class GeventWorker(ggevent.GeventWorker):
    """gunicorn's gevent worker, stopping without a traceback on Ctrl-C.

    Ctrl-C sends SIGINT to the master and to every worker. gunicorn's gevent
    worker answers SIGINT and SIGQUIT with ``sys.exit(0)`` in a new greenlet,
    which gevent prints as a ``SystemExit`` traceback (benoitc/gunicorn#3239,
    closed as expected behaviour). Stopping as on SIGTERM instead ends the same
    way: no new connections, requests in flight finish, exit status 0.
    """

    def handle_quit(self, sig, frame):
        self.alive = False


worker_class = GeventWorker
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

# The master imports the app once and the workers share its pages (a fifth
# less memory for two workers: docs/performance.md). Each worker opens its own
# connections: the app keeps none open while it is built, and a forked process
# starts with an empty database pool (taskapi/data/database.py).
preload_app = True

# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default,
# shared by every instance started from the same home: the last one started
# takes it over, and `gunicornc` then drives an instance it did not mean to.
# Signals (HUP, TERM, TTIN/TTOU) do all we need.
control_socket_disable = True


def pre_fork(server, worker):
    """Move what the master made so far out of the collector's reach.

    A collection in a worker would otherwise write to the GC header of every
    object it scans, copying the shared pages one by one; frozen objects are
    never scanned (the gc module's documentation).
    """
    gc.freeze()
