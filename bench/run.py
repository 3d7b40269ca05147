"""`make bench`: taskapi against a framework-free baseline, under gunicorn and wrk.

Creates a fresh PostgreSQL database, migrates it with the CLI, seeds 20 users
x 50 tasks, then serves bench/baseline.py and taskapi (wsgi:app) in each
configuration with the same gunicorn settings (gunicorn.conf.py) and drives
each with wrk over loopback: list, get-one and create, 16 connections,
--duration seconds each, alternating all the servers for --rounds rounds.

The configurations are what production runs: APP_ENV=production, rate limits
on (a limit no run reaches, so every request still does the bookkeeping)
with the in-memory store, then with Redis; access logs on and written (to
bench/results/*.log); CORS_ORIGINS set, and every request sending an Origin;
BETTER_AUTH_URL set (its JWKS is never fetched: the bench's tokens are HS256,
verified with the shared secret). Then the same with limits off, labelled.

The baseline runs under both gevent and sync workers, alternating with the
rest; each scenario's ratio is against the faster of the two. Prints the
median requests/s, its p50/p90/p99 latency, the service/baseline ratios, and
the memory of each server after the run (proportional set size summed over
the master and its workers, from /proc/<pid>/smaps_rollup); writes the same
into docs/performance.md between its "make bench" markers, naming the
machine. Drops the database at the end.

Usage: .venv/bin/python bench/run.py [--duration 10] [--connections 16] [--rounds 3]
       [--configurations memory,redis,off] [--no-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import jwt
import redis
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.databases import fresh_postgres_database, upgrade_with_cli
from harness.gunicorn import worker_pids

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PERFORMANCE_DOC = ROOT / "docs" / "performance.md"
DOC_BEGIN = "<!-- make bench: the latest run, written by bench/run.py -->"
DOC_END = "<!-- make bench: end -->"
SECRET = "bench-secret-" + "b" * 60
USERS = 20
TASKS_PER_USER = 50
SCENARIOS = ("list", "get", "create")
ORIGIN = "https://app.example.com"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PRODUCTION = {
    "APP_ENV": "production",
    "RATELIMIT_ENABLED": "true",
    # Far above what wrk sends per user (some 10,000 a minute): no 429s.
    "RATELIMIT_DEFAULT": "100000000 per minute",
    "CORS_ORIGINS": ORIGIN,
    # Nothing listens there; HS256 tokens never need it.
    "BETTER_AUTH_URL": "http://127.0.0.1:9",
    "LOG_LEVEL": "INFO",
}
# The framework-free baseline under each worker class; ratios take the faster.
BASELINES = {
    "baseline-gevent": "gunicorn.conf.py",
    "baseline-sync": "bench/gunicorn_sync.conf.py",
}
CONFIGURATIONS = {
    "memory": ("production, limits on, in-memory store", {"RATELIMIT_STORAGE_URI": "memory://"}),
    "redis": ("production, limits on, Redis store", {"RATELIMIT_STORAGE_URI": REDIS_URL}),
    "off": ("production, limits OFF (for comparison)", {"RATELIMIT_ENABLED": "false"}),
}

LUA = """
local users = %(users)s
local scenario = "%(scenario)s"
local counter = 0
request = function()
  counter = counter + 1
  local user = users[(counter %% #users) + 1]
  local headers = {["Authorization"] = "Bearer " .. user.token, ["Origin"] = "%(origin)s"}
  if scenario == "list" then
    return wrk.format("GET", "/api/" .. user.id .. "/tasks", headers)
  elseif scenario == "get" then
    local task = user.tasks[(counter %% #user.tasks) + 1]
    return wrk.format("GET", "/api/" .. user.id .. "/tasks/" .. task, headers)
  end
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", "/api/" .. user.id .. "/tasks", headers, '{"title": "bench task"}')
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(database_url: str, env: dict) -> tuple[list[dict], list[dict]]:
    """Two sets of 20 users x 50 tasks: one read by list and get, one written to."""
    upgrade_with_cli(env)
    engine = create_engine(database_url)
    users = []
    with engine.begin() as connection:
        for n in range(2 * USERS):
            user_id = f"benchuser{n:02d}{uuid.uuid4().hex[:8]}"
            connection.execute(text("INSERT INTO users (id) VALUES (:id)"), {"id": user_id})
            ids = (
                connection.execute(
                    text(
                        "INSERT INTO tasks (user_id, title, description, created_at, updated_at) "
                        "SELECT :id, 'task ' || n, 'seeded', "
                        "now() - n * interval '1 minute', now() "
                        "FROM generate_series(1, :count) AS n RETURNING id"
                    ),
                    {"id": user_id, "count": TASKS_PER_USER},
                )
                .scalars()
                .all()
            )
            token = jwt.encode(
                {"sub": user_id, "exp": int(time.time()) + 86400}, SECRET, algorithm="HS256"
            )
            users.append({"id": user_id, "token": token, "tasks": ids})
    engine.dispose()
    return users[:USERS], users[USERS:]


def lua_table(users: list[dict]) -> str:
    rows = []
    for user in users:
        tasks = ", ".join(str(task) for task in user["tasks"])
        rows.append(f'{{id = "{user["id"]}", token = "{user["token"]}", tasks = {{{tasks}}}}}')
    return "{" + ",\n".join(rows) + "}"


@contextmanager
def gunicorn(app: str, env: dict, log: Path, config: str = "gunicorn.conf.py"):
    port = free_port()
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", config, app],
            cwd=ROOT,
            env=env | {"PORT": str(port)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/x/tasks", timeout=2)  # noqa: S310
            except urllib.error.HTTPError:
                break  # answering (401 without a token)
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{app} did not start; see {log}") from None
                time.sleep(0.1)
        try:
            yield base, process
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def memory_mb(pid: int) -> dict:
    """Peak RSS, and now: RSS, the proportional set size (shared pages divided
    among the processes that share them) and the private part."""
    status = Path(f"/proc/{pid}/status").read_text()
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()

    def kb(text: str, field: str) -> float:
        return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) / 1024

    return {
        "peak_rss": kb(status, "VmHWM"),
        "rss": kb(status, "VmRSS"),
        "pss": kb(rollup, "Pss"),
        "private": kb(rollup, "Private_Clean") + kb(rollup, "Private_Dirty"),
    }


def server_memory(master: int) -> dict:
    """The master's and each worker's memory, and the PSS of them all together."""
    processes = [memory_mb(master)] + [memory_mb(pid) for pid in worker_pids(master)]
    return {
        "processes": processes,
        "pss_total": sum(process["pss"] for process in processes),
        "largest_worker_rss": max(process["rss"] for process in processes[1:]),
    }


def machine() -> str:
    """The CPU model, its cores and the memory, as /proc says."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    memory = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    gib = int(memory.group(1)) / 1024**2 if memory else 0
    cpu = model.group(1).strip() if model else "unknown CPU"
    return f"{cpu}, {os.cpu_count()} cores, {gib:.0f} GiB"


def run_wrk(base: str, script: Path, duration: int, connections: int) -> dict:
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    latency = {
        pct: to_ms(value) for pct, value in re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failures = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency["50"],
        "p90": latency["90"],
        "p99": latency["99"],
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": failures.group(1) if failures else "",
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (its latencies come with it)."""
    ordered = sorted(runs, key=lambda run: run["rps"])
    median = dict(ordered[len(ordered) // 2])
    median["non_2xx"] = sum(run["non_2xx"] for run in runs)
    return median


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def wrk_arguments(description: str) -> argparse.ArgumentParser:
    """The options every wrk benchmark here takes: how long, how many, where."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="median of this many runs")
    parser.add_argument(
        "--server",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    return parser


def require_wrk() -> None:
    """Stop with one line when wrk is missing: installing it is the machine's business."""
    if shutil.which("wrk") is None:
        sys.exit(
            "The benchmarks need wrk, which is not on PATH: install it "
            "(Debian or Ubuntu: sudo apt-get install wrk; macOS: brew install wrk)."
        )


def main() -> None:
    parser = wrk_arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--configurations",
        default="memory",
        help=f"comma-separated, of: {', '.join(CONFIGURATIONS)} (default: memory, production's)",
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="do not write the figures into docs/performance.md"
    )
    args = parser.parse_args()
    require_wrk()
    configurations = [name.strip() for name in args.configurations.split(",") if name.strip()]
    unknown = set(configurations) - set(CONFIGURATIONS)
    if unknown:
        parser.error(f"unknown configurations: {', '.join(sorted(unknown))}")
    if "redis" in configurations and not redis_answers():
        print(f"! Redis does not answer at {REDIS_URL}: the Redis configuration is skipped")
        configurations.remove("redis")
    RESULTS.mkdir(parents=True, exist_ok=True)

    with fresh_postgres_database(args.server, prefix="taskapi_bench") as database_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BETTER_AUTH_SECRET": SECRET,
            "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
            **PRODUCTION,
        }
        readers, writers = seed(database_url, env)
        for scenario in SCENARIOS:
            # Creates go to users of their own, so the lists read stay at 50 tasks.
            users = writers if scenario == "create" else readers
            (RESULTS / f"{scenario}.lua").write_text(
                LUA % {"users": lua_table(users), "scenario": scenario, "origin": ORIGIN}
            )
        runs: dict = {}
        memory: dict = {}
        with ExitStack() as servers:
            urls = {
                name: servers.enter_context(
                    gunicorn("bench.baseline:app", env, RESULTS / f"{name}.log", config)
                )
                for name, config in BASELINES.items()
            }
            for name in configurations:
                urls[name] = servers.enter_context(
                    gunicorn("wsgi:app", env | CONFIGURATIONS[name][1], RESULTS / f"{name}.log")
                )
            # Rounds alternate the servers, so drift on the machine hits all alike.
            for _round in range(args.rounds):
                for scenario in SCENARIOS:
                    for name, (url, _process) in urls.items():
                        result = run_wrk(
                            url, RESULTS / f"{scenario}.lua", args.duration, args.connections
                        )
                        runs.setdefault((name, scenario), []).append(result)
            for name, (_url, process) in urls.items():
                memory[name] = server_memory(process.pid)
        results = {key: median_run(values) for key, values in runs.items()}

    text_report = report(results, memory, configurations, args)
    if not args.no_docs:
        write_into_docs(text_report)


def redis_answers() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError:
        return False


def faster_baseline(results: dict, scenario: str) -> str:
    return max(BASELINES, key=lambda name: results[(name, scenario)]["rps"])


def report(results: dict, memory: dict, configurations: list[str], args) -> str:
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    lines = [
        f"{time.strftime('%Y-%m-%d')}, {machine()}; PostgreSQL 15 on the same machine",
        f"wrk -t2 -c{args.connections} -d{args.duration}s over loopback, median of {args.rounds} "
        f"alternating rounds; gunicorn {workers} workers (taskapi: gevent; the baseline under "
        "gevent and under sync, each ratio against the faster)",
    ]
    for name in configurations:
        lines += [
            "",
            CONFIGURATIONS[name][0],
            f"{'scenario':<8} {'taskapi req/s':>14} {'baseline req/s':>15} {'ratio':>6}   "
            f"{'taskapi p50/p90/p99 ms':>23}   {'baseline p50/p90/p99 ms':>24} {'p99 x':>6}",
        ]
        for scenario in SCENARIOS:
            baseline = faster_baseline(results, scenario)
            ours, base = results[(name, scenario)], results[(baseline, scenario)]
            lines.append(
                f"{scenario:<8} {ours['rps']:>14.0f} {base['rps']:>9.0f} {baseline[9:]:>5} "
                f"{ours['rps'] / base['rps']:>6.2f}   "
                f"{ours['p50']:>7.1f}/{ours['p90']:>6.1f}/{ours['p99']:>7.1f}   "
                f"{base['p50']:>8.1f}/{base['p90']:>6.1f}/{base['p99']:>7.1f} "
                f"{ours['p99'] / base['p99']:>6.2f}"
            )
            for server in (name, *BASELINES):
                result = results[(server, scenario)]
                if result["non_2xx"] or result["socket_errors"]:
                    lines.append(
                        f"  ! {server}: {result['non_2xx']} non-2xx, socket errors: "
                        f"{result['socket_errors'] or 'none'}"
                    )
    lines += ["", "baseline req/s by worker class (list / get / create):"]
    for name in BASELINES:
        rates = " / ".join(f"{results[(name, scenario)]['rps']:.0f}" for scenario in SCENARIOS)
        lines.append(f"  {name:<16} {rates}")
    lines += ["", "memory after the run: PSS of master + workers; largest worker's RSS:"]
    for name, measured in memory.items():
        lines.append(
            f"  {name:<16} {measured['pss_total']:6.1f} MB PSS; "
            f"largest worker {measured['largest_worker_rss']:.1f} MB RSS"
        )
    text_report = "\n".join(lines)
    print(text_report)
    (RESULTS / "latest.txt").write_text(text_report + "\n")
    (RESULTS / "latest.json").write_text(
        json.dumps({f"{k[0]}/{k[1]}": v for k, v in results.items()} | {"memory_mb": memory})
    )
    return text_report


def write_into_docs(text_report: str) -> None:
    """Replace the latest run in docs/performance.md (between its markers) with this one."""
    document = PERFORMANCE_DOC.read_text()
    begin, end = document.find(DOC_BEGIN), document.find(DOC_END)
    if begin < 0 or end < begin:
        print(f"! {PERFORMANCE_DOC} has no make bench markers: not written")
        return
    block = f"{DOC_BEGIN}\n```\n{text_report}\n```\n"
    PERFORMANCE_DOC.write_text(document[:begin] + block + document[end:])
    print(f"written into {PERFORMANCE_DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
