"""gunicorn settings: ``PORT`` and ``WEB_CONCURRENCY`` come from the environment.

Without ``PORT`` (local ``make run``) the server listens on 127.0.0.1:8000 only;
with it (a PaaS) on every interface, as the platform's router expects.
"""

import gc
import os

_port = os.environ.get("PORT")
bind = f"0.0.0.0:{_port}" if _port else "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A request may wait up to 10 s for a database connection; leave room beyond that.
timeout = 30
graceful_timeout = 20
# Platform routers keep connections open between requests.
keepalive = 5
# gunicorn's largest: a list's next link (query string plus cursor) must fit;
# the app refuses longer query strings itself (taskapi/routing.py).
limit_request_line = 8190
# Let the platform's router's X-Forwarded-* through only from itself.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Import the app once in the master; workers share its memory copy-on-write.
# create_app() opens no connections, so nothing is shared that must not be.
preload_app = True


def pre_fork(server, worker):
    # Objects that exist now are never collected: the collector must not write
    # to (and so copy) the pages the workers share with the master.
    gc.freeze()
