"""The benchmark scripts' own edge: without wrk they stop with one line saying how
to install it (make bench installs nothing itself)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.gunicorn import ROOT


@pytest.mark.parametrize("script", ["bench/run.py", "bench/instances.py"])
def test_without_wrk_the_bench_stops_with_one_line(script):
    result = subprocess.run(
        [sys.executable, script],
        cwd=ROOT,
        env={**os.environ, "PATH": ""},  # no wrk anywhere
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    (line,) = (result.stdout + result.stderr).splitlines()
    assert "need wrk" in line and "apt-get install wrk" in line
