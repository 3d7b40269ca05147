"""The package's shape: no import cycles, every per-user view wearing ``user_view``, and
what may import what (config.py nothing of the package; bench and harness nothing of tests)."""

from __future__ import annotations

import ast
from pathlib import Path

import taskapi
from taskapi.auth.decorators import user_view

PACKAGE = Path(taskapi.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (anywhere in the file)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {candidate for candidate in candidates if candidate in modules}
    # A package's own __init__ is not a dependency of its modules in this sense.
    return found - {name, package if name != package else ""}


def test_no_import_cycles():
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: imported_modules(path, set(paths)) for name, path in paths.items()}
    graph = {name: {dep for dep in deps if dep != "taskapi"} for name, deps in graph.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for dep in graph[node]:
                if dep == start:
                    return [*trail, dep]
                if dep not in trail:
                    stack.append((dep, [*trail, dep]))
        return None

    cycles = [cycle for name in graph if (cycle := cycle_from(name))]
    assert cycles == []
    assert "taskapi.limits" not in graph["taskapi.auth"]


def wrapper_layers(view) -> list:
    """The code of each decorator's wrapper around ``view``, outermost first."""
    layers = []
    while hasattr(view, "__wrapped__"):
        layers.append(view.__code__)
        view = view.__wrapped__
    return layers


def test_every_per_user_view_wears_user_view_outermost(app):
    """Once, and outside every other wrapper: the token is checked before anything is read."""

    def view():
        return None

    guard = user_view(view).__code__
    per_user = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/<user_id>")]
    assert per_user
    for rule in per_user:
        layers = wrapper_layers(app.view_functions[rule.endpoint])
        assert layers[:1] == [guard], rule.rule
        assert layers.count(guard) == 1, rule.rule


def test_config_imports_nothing_from_the_package():
    """gunicorn's master loads taskapi/config.py by itself (gunicorn.conf.py)."""
    modules = {module_name(path) for path in PACKAGE.rglob("*.py")}
    assert imported_modules(PACKAGE / "config.py", modules) == set()


def test_bench_and_harness_import_nothing_from_tests():
    """The benchmarks run without the test suite; both share harness/."""
    root = PACKAGE.parent
    for path in [*(root / "bench").glob("*.py"), *(root / "harness").glob("*.py")]:
        nodes = list(ast.walk(ast.parse(path.read_text())))
        imported = {node.module for node in nodes if isinstance(node, ast.ImportFrom)}
        imported |= {
            alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names
        }
        assert not {name for name in imported if name and name.split(".")[0] == "tests"}, path


ROOMS_NOT_IMPORTED = {
    # Data access serves every process (web, MCP, the dispatcher): it knows no request.
    "taskapi.data": ("taskapi.http", "taskapi.auth", "taskapi.blueprints", "taskapi.schemas"),
    # Who is calling: its plain functions run outside a request too.
    "taskapi.auth": ("taskapi.http", "taskapi.blueprints"),
}


def test_each_room_imports_only_the_rooms_below_it():
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    crossings = [
        (name, dep)
        for name, path in paths.items()
        for room, forbidden in ROOMS_NOT_IMPORTED.items()
        if name.startswith(room)
        for dep in imported_modules(path, set(paths))
        if dep.startswith(forbidden)
    ]
    assert crossings == []
