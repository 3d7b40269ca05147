"""`make bench-instances`: one instance against two behind nginx, all through PgBouncer.

Creates a fresh PostgreSQL database, seeds it as `make bench` does (20 users
x 50 tasks read, 20 more written to), and starts one PgBouncer in transaction
mode and two gunicorn instances (gunicorn.conf.py, WEB_CONCURRENCY workers
each, rate limits on and counted in Redis with a limit no run reaches). wrk
drives three set-ups in turn for each of list, get-one and create (16
connections): one instance straight, the same instance behind nginx, and
both instances behind nginx (round-robin, harness/nginx.py). The set-ups
alternate for --rounds rounds; the table shows the median run of each.
Everything it starts it stops; the database is dropped and the rate-limit
keys of its users deleted.

Run it alone on the machine: flock /tmp/taskapi-heavy.lock make bench-instances
Usage: .venv/bin/python bench/instances.py [--duration 10] [--connections 16] [--rounds 3]
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    LUA,
    SCENARIOS,
    SECRET,
    lua_table,
    median_run,
    require_wrk,
    run_wrk,
    seed,
    wrk_arguments,
)
from harness.databases import fresh_postgres_database
from harness.gunicorn import gunicorn
from harness.nginx import balancer
from harness.pgbouncer import pgbouncer

RESULTS = Path(__file__).resolve().parent / "results"
REDIS_URL = "redis://127.0.0.1:6379/4"
# The frontend's origin, as production has one (CORS_ORIGINS).
ORIGIN = "https://app.example.com"
SETUPS = ("one instance", "one behind nginx", "two behind nginx")


def main() -> None:
    args = wrk_arguments(__doc__.splitlines()[0]).parse_args()
    require_wrk()
    RESULTS.mkdir(parents=True, exist_ok=True)
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    runs: dict = {}
    with ExitStack() as stack:
        database_url = stack.enter_context(
            fresh_postgres_database(args.server, prefix="taskapi_bench")
        )
        # A server connection for each worker of the two instances (docs/scaling.md).
        pooled_url = stack.enter_context(
            pgbouncer(database_url, pool_size=2 * int(workers), query_wait_timeout=10)
        )
        env = {"DATABASE_URL": pooled_url, "BETTER_AUTH_SECRET": SECRET}
        readers, writers = seed(database_url, {**os.environ, **env, "APP_ENV": "production"})
        stack.callback(forget_limits, [user["id"] for user in readers + writers])
        for scenario in SCENARIOS:
            users = writers if scenario == "create" else readers
            (RESULTS / f"instances-{scenario}.lua").write_text(
                LUA % {"users": lua_table(users), "scenario": scenario, "origin": ORIGIN}
            )
        homes = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="instances-")))
        bases = []
        for name in ("a", "b"):
            (homes / name).mkdir()
            base, _master = stack.enter_context(
                gunicorn(
                    pooled_url,
                    BETTER_AUTH_SECRET=SECRET,
                    HOME=str(homes / name),  # each its own gunicorn control socket
                    WEB_CONCURRENCY=workers,
                    RATELIMIT_STORAGE_URI=REDIS_URL,
                    RATELIMIT_DEFAULT="100000000 per hour",
                    TRUSTED_PROXIES="1",
                    CORS_ORIGINS=ORIGIN,
                )
            )
            bases.append(base)
        urls = {
            "one instance": bases[0],
            "one behind nginx": stack.enter_context(balancer(bases[:1])),
            "two behind nginx": stack.enter_context(balancer(bases)),
        }
        for _round in range(args.rounds):
            for scenario in SCENARIOS:
                for setup in SETUPS:
                    script = RESULTS / f"instances-{scenario}.lua"
                    result = run_wrk(urls[setup], script, args.duration, args.connections)
                    runs.setdefault((setup, scenario), []).append(result)
    report({key: median_run(values) for key, values in runs.items()}, args, workers)


def forget_limits(user_ids: list[str]) -> None:
    store = redis.Redis.from_url(REDIS_URL)
    for user_id in user_ids:
        keys = list(store.scan_iter(f"*{user_id}*"))
        if keys:
            store.delete(*keys)
    store.close()


def report(results: dict, args, workers: str) -> None:
    lines = [
        f"wrk -t2 -c{args.connections} -d{args.duration}s, median of {args.rounds} alternating "
        f"runs; each instance gunicorn with {workers} workers; PgBouncer (transaction mode); "
        f"rate limits on (Redis); PostgreSQL 15; {os.cpu_count()} cores",
        "",
        f"{'scenario':<8} {'set-up':<17} {'req/s':>7} {'vs one':>7}   {'p50/p90/p99 ms':>21}",
    ]
    for scenario in SCENARIOS:
        alone = results[("one instance", scenario)]["rps"]
        for setup in SETUPS:
            run = results[(setup, scenario)]
            lines.append(
                f"{scenario:<8} {setup:<17} {run['rps']:>7.0f} {run['rps'] / alone:>7.2f}   "
                f"{run['p50']:>6.1f}/{run['p90']:>6.1f}/{run['p99']:>7.1f}"
            )
            if run["non_2xx"] or run["socket_errors"]:
                lines.append(
                    f"  ! {run['non_2xx']} non-2xx, socket errors: {run['socket_errors'] or 'none'}"
                )
    text = "\n".join(lines)
    print(text)
    (RESULTS / "instances.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
