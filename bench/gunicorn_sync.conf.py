"""gunicorn settings for the baseline under sync workers (`make bench`).

gunicorn.conf.py patches the standard library for gevent as it loads, so a
sync worker started from it would not be a plain one: this is that file's
serving settings without gevent.
"""

import os

bind = f"127.0.0.1:{os.environ['PORT']}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = 30
keepalive = 5
preload_app = True
control_socket_disable = True
