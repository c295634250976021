"""The layout's import rule, checked by walking every module's imports (so it cannot rot).

Dependencies point one way: ``app/web`` (the composition root) → ``schema`` → ``resolvers`` →
the rest of ``app``. Only ``app/web`` and ``app/cli`` import the web stack, ``schema`` or
``resolvers``; the app root keeps nothing but the package marker and the settings. The
benchmarks and the tests share ``testkit``, never each other's modules, and the service imports
none of the three.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB_STACK = frozenset({"starlette", "uvicorn"})
EDGES = ("app/web/", "app/cli/")


def imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at any depth of the file (late imports included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def top(module: str) -> str:
    return module.split(".", 1)[0]


def modules_under(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def violations(
    paths: list[Path], forbidden: frozenset[str], prefixes: tuple[str, ...] = ()
) -> list[str]:
    found = []
    for path in paths:
        for module in imported_modules(path):
            if top(module) in forbidden or module.startswith(prefixes):
                found.append(f"{relative(path)} imports {module}")
    return found


def test_the_walker_sees_late_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n\ndef f():\n    from starlette.responses import Response\n")
    assert set(imported_modules(sample)) == {"os", "starlette.responses"}


def test_only_the_web_edge_and_the_cli_import_the_web_stack_schema_or_resolvers() -> None:
    inner = [p for p in modules_under("app") if not relative(p).startswith(EDGES)]
    assert inner, "app/ has modules outside the edges"
    assert violations(inner, WEB_STACK | {"schema", "resolvers"}) == []


@pytest.mark.parametrize(
    ("folder", "forbidden", "prefixes"),
    [
        ("schema", WEB_STACK, ("app.web", "app.cli")),
        ("resolvers", WEB_STACK | {"schema"}, ("app.web", "app.cli")),
    ],
)
def test_the_graphql_layers_point_inwards(
    folder: str, forbidden: frozenset[str], prefixes: tuple[str, ...]
) -> None:
    assert violations(modules_under(folder), forbidden, prefixes) == []


def test_the_app_root_holds_only_the_package_marker_and_the_settings() -> None:
    loose = {p.name for p in (ROOT / "app").glob("*.py")}
    assert loose <= {"__init__.py", "settings.py", "__main__.py"}


def test_the_cli_imports_no_web_internals_beyond_the_server_it_starts() -> None:
    """The CLI drives services; of the web edge it only starts the server (serve, dev)."""
    cli = [p for p in modules_under("app/cli") if p.name != "serve.py"]
    assert violations(cli, WEB_STACK | {"resolvers"}, ("app.web",)) == []


@pytest.mark.parametrize(
    ("folders", "forbidden"),
    [
        (("bench",), {"tests"}),
        (("testkit",), {"tests", "bench"}),
        (("app", "schema", "resolvers", "migrations"), {"tests", "bench", "testkit"}),
    ],
    ids=["bench", "testkit", "service"],
)
def test_development_code_stays_on_its_side(folders: tuple[str, ...], forbidden: set[str]) -> None:
    paths = modules_under(*folders)
    assert paths, folders
    assert violations(paths, frozenset(forbidden)) == []
