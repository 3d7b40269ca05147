"""How keep-alive connections spread over gunicorn's workers.

Usage: .venv/bin/python bench/spread.py [--connections 16] [--rounds 5]

Starts taskapi under gunicorn (gunicorn.conf.py, 2 workers, SQLite), opens
--connections keep-alive connections at once, sends a request on each, and
counts with ``ss`` which worker holds each connection; then closes them all
and starts again, --rounds times. A round where one worker holds most
connections would halve throughput for as long as those connections live.
"""

from __future__ import annotations

import argparse
import http.client
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.gunicorn import gunicorn, worker_pids


def holders(port: int, workers: list[str]) -> Counter:
    """Established connections to ``port``, counted by the pid of the worker holding them."""
    lines = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    counts: Counter = Counter()
    for line in lines:
        pids = set(re.findall(r"pid=(\d+)", line)) & set(workers)
        counts.update(pids)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        gunicorn(f"sqlite:///{folder}/spread.sqlite3") as (base, process),
    ):
        port = int(base.rsplit(":", 1)[1])
        workers = [str(pid) for pid in worker_pids(process.pid, at_least=2)]
        for round_number in range(1, args.rounds + 1):
            connections = [
                http.client.HTTPConnection("127.0.0.1", port) for _ in range(args.connections)
            ]
            for connection in connections:
                connection.request("GET", "/healthz")
            for connection in connections:
                connection.getresponse().read()
            counts = holders(port, workers)
            shares = " / ".join(str(counts[pid]) for pid in workers)
            print(f"round {round_number}: connections per worker {shares}", flush=True)
            for connection in connections:
                connection.close()


if __name__ == "__main__":
    main()
