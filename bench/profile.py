"""Profile one scenario of the hot path in-process with pyinstrument.

Usage: .venv/bin/python bench/profile.py {list,get,create} [REQUESTS] [--time-only] [--limits-off]

Runs the real app (the production configuration of `make bench`: limits on
with the in-memory store, CORS, an Origin on every request, access logs on;
PostgreSQL in a fresh database) through Flask's test client, so the profile
shows framework, auth, limits, ORM, serialisation and logging cost without
the network and gunicorn. The log lines go to /dev/null.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyinstrument import Profiler

from bench.run import ORIGIN, PRODUCTION, SECRET, seed
from harness.databases import fresh_postgres_database
from taskapi import create_app


def main(scenario: str, requests: int) -> None:
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with fresh_postgres_database(server, prefix="taskapi_bench") as database_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": SECRET,
            "APP_ENV": "production",
        }
        users, _writers = seed(database_url, env)
        os.environ.update(
            {key: env[key] for key in ("DATABASE_URL", "BETTER_AUTH_SECRET")}
            | PRODUCTION
            | {"RATELIMIT_STORAGE_URI": "memory://"}
            | ({"RATELIMIT_ENABLED": "false"} if "--limits-off" in sys.argv else {})
        )
        app = create_app()
        logging.getLogger("taskapi").handlers[0].stream = open(os.devnull, "w")  # noqa: SIM115
        client = app.test_client()
        user = users[0]
        headers = {"Authorization": f"Bearer {user['token']}", "Origin": ORIGIN}
        url = f"/api/{user['id']}/tasks"
        calls = {
            "list": lambda: client.get(url, headers=headers),
            "get": lambda: client.get(f"{url}/{user['tasks'][0]}", headers=headers),
            "create": lambda: client.post(url, json={"title": "profiled"}, headers=headers),
        }
        call = calls[scenario]
        for _ in range(50):
            assert call().status_code < 300
        started = time.perf_counter()
        for _ in range(requests):
            call()
        elapsed = time.perf_counter() - started
        print(
            f"{scenario}: {requests / elapsed:.0f} requests/s in-process "
            f"({elapsed / requests * 1000:.2f} ms each)"
        )
        if "--time-only" not in sys.argv:
            profiler = Profiler(interval=0.0002)
            with profiler:
                for _ in range(requests):
                    call()
            print(profiler.output_text(unicode=True, color=False, show_all="--all" in sys.argv))
        with app.app_context():
            from taskapi.extensions import db

            db.engine.dispose()


if __name__ == "__main__":
    arguments = [argument for argument in sys.argv[1:] if not argument.startswith("--")]
    main(arguments[0], int(arguments[1]) if len(arguments) > 1 else 2000)
