"""gunicorn settings: ``PORT`` and ``WEB_CONCURRENCY`` come from the environment.

Without ``PORT`` (local ``make run``) the server listens on 127.0.0.1:8000 only;
with it (a PaaS) on every interface, as the platform's router expects.

Each worker is a gevent worker: it serves many connections at once, so idle
or slow clients (a connection that sends nothing, headers a byte at a time)
hold only themselves up. docs/performance.md has the measurements that chose
it over sync and gthread workers.

The master reads and checks the app's settings once, before it binds or
forks: a setting that cannot work stops gunicorn with one line, and the
configuration's warnings are logged once, not once per worker.
"""

import importlib.util
import os
import sys

from gunicorn.workers import ggevent

# Names gunicorn does not read start with an underscore (gunicorn has a "config").
_ROOT = os.path.dirname(os.path.abspath(__file__))


def _load_taskapi_config():
    """taskapi/config.py by itself. Imported as ``taskapi.config`` it would run the
    package's __init__, which imports the whole app into this master, before any
    worker's gevent patch (jwt's JWKS client would keep an unpatched ssl.SSLContext)."""
    path = os.path.join(_ROOT, "taskapi", "config.py")
    spec = importlib.util.spec_from_file_location("_taskapi_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_config = _load_taskapi_config()
try:
    # What each worker's create_app() reads (Flask's instance folder is next to this file).
    _settings = _config.from_environment(os.path.join(_ROOT, "instance"))
except _config.ConfigError as error:
    sys.exit(_config.refusal(error, os.environ))

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

# Each worker builds the app itself, after gevent has patched the standard
# library: locks, sockets and the database pool made before the patch would
# block the whole worker instead of one request (gunicorn discourages
# preload_app with gevent for this reason).
preload_app = False

# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default,
# shared by every instance started from the same home: the last one started
# takes it over, and `gunicornc` then drives an instance it did not mean to.
# Signals (HUP, TERM, TTIN/TTOU) do all we need.
control_socket_disable = True


def on_starting(server):
    """The configuration's warnings, once here rather than once per worker."""
    for warning in _config.config_warnings(_settings):
        server.log.warning("configuration: %s", warning)
    os.environ[_config.WARNINGS_LOGGED] = "1"


def post_fork(server, worker):
    if isinstance(worker, ggevent.GeventWorker):
        # psycopg2 waits on its sockets through gevent: a query blocks its request only.
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
