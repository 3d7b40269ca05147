"""Instructions per request, counted by valgrind: taskapi against the baseline.

Usage: .venv/bin/python bench/instructions.py [list get create] [--requests 200]
       [--apps taskapi,baseline] [--set NAME=VALUE ...]

Throughput on a shared 2-core machine drifts with whatever else runs; the
number of instructions a request executes does not. Each app (taskapi in the
production configuration of `make bench`, and bench/baseline.py) is called
straight through WSGI in one process under ``valgrind --tool=callgrind``,
twice: after a warm-up of WARM_UP requests, and after WARM_UP + --requests.
The difference divided by --requests is what one request costs the app,
without gunicorn and the network (which cost both apps the same). ``--set``
changes a setting of the production configuration, to see what a part costs
(``--set CORS_ORIGINS=`` for CORS, ``--set LOG_LEVEL=WARNING`` for the access
log, ``--set RATELIMIT_ENABLED=false`` for the limits). Needs
valgrind (Debian package) and PostgreSQL.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 30
APPS = {"taskapi": "wsgi:app", "baseline": "bench.baseline:app"}
BODY = b'{"title": "bench task"}'


def environ_for(scenario: str, user: dict, origin: str) -> dict:
    path = f"/api/{user['id']}/tasks"
    if scenario == "get":
        path += f"/{user['tasks'][0]}"
    environ = {
        "REQUEST_METHOD": "POST" if scenario == "create" else "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {user['token']}",
        "HTTP_ORIGIN": origin,
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if scenario == "create":
        environ |= {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(BODY))}
    return environ


def drive(app_path: str, scenario: str, user: dict, origin: str, requests: int) -> None:
    """In the process valgrind watches: WARM_UP + ``requests`` calls of the app."""
    module_name, name = app_path.split(":")
    module = __import__(module_name, fromlist=[name])
    app = getattr(module, name)
    for handler in logging.getLogger("taskapi").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = open(os.devnull, "w")  # noqa: SIM115
    gc.freeze()  # as gunicorn.conf.py's master does before it forks the workers
    template = environ_for(scenario, user, origin)
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    for _ in range(WARM_UP + requests):
        environ = dict(template, **{"wsgi.input": io.BytesIO(BODY)})
        for _chunk in app(environ, start_response):
            pass
    bad = [status for status in statuses if not status.startswith(("200", "201"))]
    if bad:
        raise SystemExit(f"{app_path} {scenario}: answered {bad[0]}")


def counted(app_path: str, scenario: str, user: dict, env: dict, requests: int, work: Path) -> int:
    out = work / f"callgrind.{scenario}.{requests}"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--drive",
            app_path,
            scenario,
            str(requests),
            json.dumps(user),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return int(re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["list", "get", "create"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--apps", default=",".join(APPS))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--drive", nargs=4, metavar=("APP", "SCENARIO", "REQUESTS", "USER"))
    args = parser.parse_args()
    if args.drive:
        from bench.run import ORIGIN

        app_path, scenario, requests, user = args.drive
        drive(app_path, scenario, json.loads(user), ORIGIN, int(requests))
        return

    from bench.run import PRODUCTION, SECRET, seed
    from harness.databases import fresh_postgres_database

    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with (
        fresh_postgres_database(server, prefix="taskapi_bench") as database_url,
        tempfile.TemporaryDirectory() as work,
    ):
        env = {
            **os.environ,
            **PRODUCTION,
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": SECRET,
            "RATELIMIT_STORAGE_URI": "memory://",
            **dict(setting.split("=", 1) for setting in args.set),
        }
        readers, writers = seed(database_url, env)
        print(f"{'scenario':8} " + " ".join(f"{name:>12}" for name in args.apps.split(",")))
        for scenario in args.scenarios:
            user = writers[0] if scenario == "create" else readers[0]
            costs = []
            for name in args.apps.split(","):
                few = counted(APPS[name], scenario, user, env, 0, Path(work))
                many = counted(APPS[name], scenario, user, env, args.requests, Path(work))
                costs.append((many - few) / args.requests)
            print(f"{scenario:8} " + " ".join(f"{cost / 1e6:11.2f}M" for cost in costs), flush=True)


if __name__ == "__main__":
    main()
