"""The package's shape: no import cycles, and every per-user view wearing ``user_view``."""

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
