"""The WSGI entry point: ``gunicorn wsgi:app``."""

import logging

from taskapi import create_app

# For the whole server process, so here rather than in the factory: what no log
# line of it shows (source file and line, thread names, the multiprocessing
# process name), which the logging HOWTO's "Optimization" section says to
# switch off then; finding the caller alone walks the stack on every record.
# gunicorn's own lines show the process id, which stays.
logging._srcfile = None
logging.logThreads = False
logging.logMultiprocessing = False

app = create_app()
