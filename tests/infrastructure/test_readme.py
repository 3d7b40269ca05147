"""The README's curl walk-through, pasted into bash as a newcomer would, against
gunicorn; and the documents' promises: the README stays short, links stay inside
the repository, and every setting the code reads is documented."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from harness.gunicorn import call, gunicorn

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
MARKER = (
    "<!-- walk-through: tests/infrastructure/test_readme.py runs the next block, top to bottom -->"
)
API_LINE = "API=http://127.0.0.1:8000"


def walk_through() -> str:
    """The fenced sh block right after the marker: one subshell that stops at the
    first failure, its second line setting API."""
    text = README.read_text()
    assert text.count(MARKER) == 1, "the walk-through marker is missing or doubled"
    match = re.match(r"\s*```sh\n(.*?)\n```", text.split(MARKER, 1)[1], re.S)
    assert match, "no ```sh block right after the walk-through marker"
    script = match.group(1)
    lines = script.splitlines()
    assert (lines[0], lines[1], lines[-1]) == ("( set -e", API_LINE, ")")
    return script


def paste_walk_through(base: str, strict: bool = True) -> subprocess.CompletedProcess:
    """The walk-through against ``base``, pasted into bash; ``strict`` adds what a
    careful human would notice: an unset variable or a failing pipe stops it too."""
    script = walk_through().replace(API_LINE, f"API={base}", 1)
    return subprocess.run(
        ["bash", "-c", ("set -euo pipefail\n" if strict else "") + script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_walk_through(base: str) -> str:
    result = paste_walk_through(base)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def server(tmp_path):
    """gunicorn after `flask db upgrade`, on a new SQLite file (production settings)."""
    with gunicorn(f"sqlite:///{tmp_path / 'walk-through.sqlite3'}") as (base, process):
        yield base
    assert "Traceback" not in process.output, process.output


def test_walk_through_runs_top_to_bottom(server):
    out = run_walk_through(server)

    # 1. registered and logged in
    assert '"access_token"' in out
    # 2. the create shows its status, Location and ETag, then the task
    assert re.search(r"^HTTP/1\.1 201 CREATED\r?$", out, re.M)
    location = re.search(r"^Location: /api/(\w+)/tasks/(\d+)\r?$", out, re.M)
    assert location, out
    me, task_id = location.groups()
    assert re.search(rf'^ETag: "{task_id}\.1"\r?$', out, re.M)
    assert '"due_at":"2026-12-01T16:00:00Z"' in out  # +01:00 stored and shown in UTC
    # 3. the bad body is a problem naming the field
    assert '"errors": {"title": ["Length must be between 1 and 200."]}' in out
    # 4. a page of two among three, and a Link to the rest
    assert re.search(r"^X-Total-Count: 3\r?$", out, re.M)
    link = re.search(r'^Link: <(\S+)>; rel="next"\r?$', out, re.M)
    assert link and "cursor=" in link.group(1), out
    assert f"/api/{me}/tasks?" in link.group(1)
    # 5 and 6: the statuses the comments promise, in order
    assert re.findall(r"^(\d{3})$", out, re.M) == ["304", "412", "204", "404"]
    assert '"priority":"low"' in out  # the If-Match write that was current
    # what is left: the two other tasks, by title
    final = json.loads(out.rstrip().splitlines()[-1])
    assert [task["title"] for task in final] == ["Call mum", "Pay rent"]
    assert {task["user_id"] for task in final} == {me}


def test_walk_through_can_be_pasted_again(server):
    """A second paste finds the account taken (409) and still runs to the end."""
    run_walk_through(server)
    out = run_walk_through(server)
    assert '"status": 409' in out
    final = json.loads(out.rstrip().splitlines()[-1])
    assert [task["title"] for task in final] == ["Call mum", "Call mum", "Pay rent", "Pay rent"]


def test_walk_through_stops_loudly_when_the_login_gives_no_token(server):
    """Pasted as it is, with the account's password another than the README's (a
    429 at login is the same): no /api//tasks calls after it, and a message why."""
    account = {"email": "ada@example.com", "name": "Ada", "password": "another horse"}
    assert call(f"{server}/api/auth/register", "POST", account)[0] == 201
    result = paste_walk_through(server, strict=False)
    assert result.returncode == 1
    assert '"status": 409' in result.stdout  # the register ran, and nothing after the login
    assert "HTTP/1.1" not in result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("No token: the login answered {") and '"status": 401' in line


def test_walk_through_never_overwrites_the_shells_user_variable():
    assert not re.search(r"\bUSER=", walk_through())


def test_readme_is_short():
    assert len(README.read_bytes()) <= 10 * 1024


LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>")


def anchors(document: Path) -> set[str]:
    """GitHub's ids for the headings of ``document``."""
    ids = set()
    for heading in re.findall(r"^#+ (.+)$", document.read_text(), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        ids.add(slug)
    return ids


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_links_stay_inside_the_repository(document):
    """Nothing outside the clone is linked; every relative link and anchor resolves."""
    for relative, absolute in LINK.findall(document.read_text()):
        if absolute:
            # Only the local server (the README's walk-through) may be named by URL.
            assert absolute.startswith("http://127.0.0.1:8000/"), absolute
            continue
        assert not re.match(r"[a-z]+:", relative), f"{document.name} links {relative}"
        path, _, anchor = relative.partition("#")
        target = (document.parent / path).resolve() if path else document
        assert target.is_relative_to(ROOT), f"{document.name} links outside: {relative}"
        assert target.exists(), f"{document.name} links a missing file: {relative}"
        if anchor:
            assert anchor in anchors(target), f"{document.name}: no heading for {relative}"


SETTING_READS = re.compile(
    r'environ(?:\.get\(|\[)\s*"([A-Z][A-Z0-9_]+)"'  # os.environ.get("X"), environ["X"]
    r'|parse_\w+\(environ,\s*"([A-Z][A-Z0-9_]+)"'  # parse_int(environ, "X", ...)
)
# bench/baseline.py is a WSGI app: its environ["..."] are request keys, not settings.
WSGI_KEYS = re.compile(
    r"HTTP_\w+|PATH_INFO|REQUEST_METHOD|CONTENT_LENGTH|CONTENT_TYPE|QUERY_STRING"
)


def test_every_setting_is_documented():
    """Each variable the code reads from the environment is in docs/operations.md."""
    sources = [
        *(ROOT / "taskapi").rglob("*.py"),
        *(ROOT / "bench").glob("*.py"),
        ROOT / "gunicorn.conf.py",
        *(ROOT / "tests").rglob("*.py"),
    ]
    names = {
        name
        for source in sources
        for groups in SETTING_READS.findall(source.read_text())
        for name in groups
        if name and not WSGI_KEYS.fullmatch(name)
    }
    assert {"DATABASE_URL", "FORWARDED_ALLOW_IPS", "BENCH_DATABASE_URL"} <= names
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert sorted(name for name in names if f"`{name}`" not in operations) == []
