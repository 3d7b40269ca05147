"""Starting and stopping, as a person at a terminal sees it: through the real
`flask` command and gunicorn, a configuration that cannot work is one line and
a non-zero exit, its warnings print once, and Ctrl-C stops without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.gunicorn import ROOT, SECRET, call, gunicorn

from ..helpers import fresh_database

# A setting that works but not as meant: exactly one warning.
WARNED = {"CORS_ORIGINS": "https://app.example.com/"}


def run(command: list[str], tmp_path, **environment: str) -> subprocess.CompletedProcess:
    """``command`` from the project root, with ``environment`` instead of this run's
    taskapi settings (no APP_ENV or secret unless given)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("APP_ENV", "BETTER_AUTH_SECRET", "WEB_CONCURRENCY")
    }
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'startup.sqlite3'}", **environment}
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


RELEASE = ["flask", "--app", "taskapi", "db", "upgrade"]
WEB = ["gunicorn", "wsgi:app"]


@pytest.mark.parametrize("command", [RELEASE, WEB], ids=["release", "web"])
def test_no_app_env_and_no_secret_is_one_line_with_the_hint(command, tmp_path):
    result = run(command, tmp_path, PORT="1")  # gunicorn must stop before it binds
    assert result.returncode == 1
    (line,) = (result.stdout + result.stderr).splitlines()
    assert "BETTER_AUTH_SECRET must be set to at least 32 characters in production" in line
    assert "prefix the command with APP_ENV=development" in line


@pytest.mark.parametrize(
    ("command", "value", "message"),
    [
        (RELEASE, "2x", "WEB_CONCURRENCY must be a whole number, not '2x'."),
        # gunicorn itself reads WEB_CONCURRENCY with int() before any config file: "2x"
        # stops it with its own traceback (the release step has said why by then).
        (WEB, "0", "WEB_CONCURRENCY must be a whole number of at least 1."),
    ],
    ids=["release", "web"],
)
def test_a_bad_value_is_one_line_naming_it(command, value, message, tmp_path):
    environment = {"APP_ENV": "production", "BETTER_AUTH_SECRET": SECRET, "PORT": "1"}
    result = run(command, tmp_path, WEB_CONCURRENCY=value, **environment)
    assert result.returncode == 1
    (line,) = (result.stdout + result.stderr).splitlines()
    assert line.endswith(message)
    assert "APP_ENV=development" not in line  # APP_ENV was set: no hint


def test_the_command_line_warns_once(tmp_path):
    result = run(RELEASE, tmp_path, APP_ENV="production", BETTER_AUTH_SECRET=SECRET, **WARNED)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("configuration: CORS_ORIGINS") == 1


@pytest.fixture(scope="module")
def stopped_with_ctrl_c(tmp_path_factory):
    """gunicorn with two workers and a setting that warns, served a request, then
    stopped with Ctrl-C; its process, with ``output`` and ``returncode``."""
    folder = tmp_path_factory.mktemp("startup")
    with (
        fresh_database("sqlite", folder) as database_url,
        gunicorn(database_url, ctrl_c=True, WEB_CONCURRENCY="2", **WARNED) as (base, process),
    ):
        assert call(f"{base}/healthz")[0] == 200
    return process


def test_gunicorn_warns_once_for_two_workers(stopped_with_ctrl_c):
    output = stopped_with_ctrl_c.output
    # Both workers built the app (a stopping worker finishes loading it first).
    assert output.count("Worker exiting") == 2, output
    assert output.count("configuration: CORS_ORIGINS") == 1, output


def test_ctrl_c_stops_gunicorn_cleanly(stopped_with_ctrl_c):
    output = stopped_with_ctrl_c.output
    assert stopped_with_ctrl_c.returncode == 0, output
    assert "Traceback" not in output and "SystemExit" not in output, output
    assert "Warning" not in output, output  # gevent's MonkeyPatchWarning, say
