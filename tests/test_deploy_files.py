"""The deployment files (Dockerfile, docker-compose.yml), checked by reading them.

Docker is not needed: these tests parse the files and check what a deployment relies on.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


# --- docker-compose.yml -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as a list of KEY=value."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {key: str(value) for key, value in raw.items()}


def _command(service: dict[str, Any]) -> str:
    raw = service.get("command", "")
    return " ".join(raw) if isinstance(raw, list) else str(raw)


def test_compose_declares_postgres_and_api(compose: dict[str, Any]) -> None:
    assert {"postgres", "api"} <= set(compose["services"])


def test_compose_postgres_is_16_with_healthcheck_and_named_volume(
    compose: dict[str, Any],
) -> None:
    postgres = compose["services"]["postgres"]
    image, _, tag = postgres["image"].partition(":")
    assert image in ("postgres", "docker.io/library/postgres")
    assert tag.split(".")[0].split("-")[0] == "16"

    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in (" ".join(test) if isinstance(test, list) else test)

    env = _environment(postgres)
    assert env["POSTGRES_DB"] == "campaign"
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD"} <= set(env)

    sources = [
        v["source"] if isinstance(v, dict) else v.split(":", 1)[0] for v in postgres["volumes"]
    ]
    named = {source for source in sources if not source.startswith((".", "/", "~"))}
    assert "pgdata" in named
    assert "pgdata" in (compose.get("volumes") or {})


def test_compose_api_builds_here_and_waits_for_healthy_postgres(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    build = api["build"]
    assert (build if isinstance(build, str) else build.get("context", ".")) in (".", "./")
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert any(str(port).split(":")[-1] == "8000" for port in api["ports"])


def test_compose_api_database_url_is_accepted_by_settings(compose: dict[str, Any]) -> None:
    env = _environment(compose["services"]["api"])
    url = env["DATABASE_URL"]
    parsed = make_url(url)
    assert parsed.host == "postgres"
    assert parsed.database == _environment(compose["services"]["postgres"])["POSTGRES_DB"]

    settings = Settings(
        database_url=url, environment=env["CAMPAIGN_ENVIRONMENT"], host=env["CAMPAIGN_HOST"]
    )
    assert settings.database_url is not None
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert make_url(settings.database_url).host == "postgres"
    assert settings.is_production
    assert settings.host == "0.0.0.0"


def test_compose_api_migrates_before_serving(compose: dict[str, Any]) -> None:
    command = _command(compose["services"]["api"])
    assert "campaign-api migrate" in command
    assert "campaign-api serve" in command
    assert command.index("campaign-api migrate") < command.index("campaign-api serve")
    # Serve only when the migration succeeded.
    assert "&&" in command[command.index("migrate") : command.index("campaign-api serve")]


def test_compose_runs_a_sender_beside_the_api_on_the_same_database(
    compose: dict[str, Any],
) -> None:
    worker = compose["services"]["worker"]
    assert _command(worker) == "campaign-api worker"
    assert worker["build"] == "."
    env = _environment(worker)
    assert env["DATABASE_URL"] == _environment(compose["services"]["api"])["DATABASE_URL"]
    assert env["CAMPAIGN_ENVIRONMENT"] == "production"
    # SIGTERM lets in-flight sends finish: the grace period must exceed an HTTP timeout.
    assert float(worker["stop_grace_period"].rstrip("s")) > Settings().send_http_timeout_s


def _api_replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that serve the API (built here, running ``campaign-api serve``)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if "campaign-api serve" in _command(service)
    }


def _host_port_for(service: dict[str, Any], container_port: str) -> str:
    (published,) = [
        str(port).rsplit(":", 1)[0]
        for port in service["ports"]
        if str(port).endswith(container_port)
    ]
    return published


def test_compose_runs_two_api_replicas_on_one_database(compose: dict[str, Any]) -> None:
    replicas = _api_replicas(compose)
    assert len(replicas) == 2, sorted(replicas)
    api_env = _environment(compose["services"]["api"])
    for service in replicas.values():
        assert service["build"] == "."
        assert _environment(service) == api_env
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Published on two host ports, nothing in front (each a whole API).
    assert len({_host_port_for(s, ":8000") for s in replicas.values()}) == 2


def test_compose_api_replicas_never_migrate_at_the_same_time(compose: dict[str, Any]) -> None:
    """Every replica but the first waits until the first is healthy (migrated and serving)."""
    replicas = _api_replicas(compose)
    first = [name for name, s in replicas.items() if set(s["depends_on"]) == {"postgres"}]
    assert first == ["api"]
    for name, service in replicas.items():
        if name != "api":
            assert service["depends_on"]["api"]["condition"] == "service_healthy"
    assert any("HEALTHCHECK" in line for line in (ROOT / "Dockerfile").read_text().splitlines())


def test_compose_runs_two_senders(compose: dict[str, Any]) -> None:
    senders = [
        service
        for service in compose["services"].values()
        if _command(service) == "campaign-api worker"
    ]
    assert sum(service.get("deploy", {}).get("replicas", 1) for service in senders) == 2


# --- Dockerfile ---------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


@pytest.fixture(scope="module")
def final_stage() -> list[tuple[str, str]]:
    """The instructions of the image that runs: the last FROM and what follows."""
    instructions = _instructions((ROOT / "Dockerfile").read_text())
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def _arguments(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [arguments for kw, arguments in stage if kw == keyword]


def test_dockerfile_uses_python_311_slim(final_stage: list[tuple[str, str]]) -> None:
    assert _arguments(final_stage, "FROM")[0].split()[0] == "python:3.11-slim"


def test_dockerfile_runs_as_non_root(final_stage: list[tuple[str, str]]) -> None:
    users = _arguments(final_stage, "USER")
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_installs_the_project() -> None:
    runs = _arguments(_instructions((ROOT / "Dockerfile").read_text()), "RUN")
    assert any(re.search(r"\bpip install (\S+ )*\.(\s|$)", run) for run in runs)
    assert not any(re.search(r"\bpip install .*(-e|--editable)\b", run) for run in runs)


def test_dockerfile_configures_production(final_stage: list[tuple[str, str]]) -> None:
    env = " ".join(_arguments(final_stage, "ENV"))
    assert "CAMPAIGN_ENVIRONMENT=production" in env
    assert "CAMPAIGN_HOST=0.0.0.0" in env
    assert "8000" in " ".join(_arguments(final_stage, "EXPOSE")).split()


def test_dockerfile_healthcheck_hits_healthz_without_curl(
    final_stage: list[tuple[str, str]],
) -> None:
    (healthcheck,) = _arguments(final_stage, "HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "urllib" in healthcheck
    assert "curl" not in healthcheck


def test_dockerfile_migrates_then_serves(final_stage: list[tuple[str, str]]) -> None:
    command = _arguments(final_stage, "CMD")[-1]
    assert command.startswith("[")
    argv = json.loads(command)  # the exec form is a JSON array
    assert argv[:2] == ["sh", "-c"]
    assert shlex.split(argv[2]) == [
        "campaign-api",
        "migrate",
        "&&",
        "exec",
        "campaign-api",
        "serve",
    ]


def test_installed_package_includes_the_migrations() -> None:
    """A non-editable install finds migrations at site-packages/migrations (app/db/migrate.py)."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
        "find"
    ]
    assert "migrations*" in find["include"]
    # migrations/versions has no __init__.py: it is packaged as a namespace package only.
    assert find.get("namespaces", True)
    assert list((ROOT / "migrations" / "versions").glob("*.py"))


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".data", ".git", "build", "*.egg-info"} <= ignored


# --- what `make run` installs, and what running needs ----------------------------------------

TEST_ONLY = {"pytest", "pytest-asyncio", "hypothesis", "playwright", "schemathesis", "ruff"}
FIRST_PARTY = {"app", "schema", "resolvers", "migrations"}


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_closure() -> set[str]:
    """Every distribution the project's dependencies install, their extras and theirs
    included: what `pip install .` brings (read from the installed metadata)."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    pending = [Requirement(r) for r in _project()["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = _dist(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            declared = requires(name) or []
        except PackageNotFoundError:
            continue  # a marker left it out on this platform
        for raw in declared:
            child = Requirement(raw)
            extras = requirement.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                pending.append(child)
    return seen


def _imported_third_party() -> set[str]:
    """The top-level modules that the service's own code imports, outside the standard
    library and the project."""
    import ast
    import sys

    modules: set[str] = set()
    for folder in FIRST_PARTY:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - FIRST_PARTY - {"__future__"}


def test_running_needs_nothing_from_the_test_extras() -> None:
    """Each module the service imports comes with a runtime dependency, so `make run` and the
    Docker image (which install no extras) can run everything the service does."""
    from importlib.metadata import packages_distributions

    provided_by = packages_distributions()
    runtime = _runtime_closure()
    missing = {
        module: provided_by.get(module)
        for module in _imported_third_party()
        if not {_dist(d) for d in provided_by.get(module, [])} & runtime
    }
    assert missing == {}


def test_the_test_tools_are_not_runtime_dependencies() -> None:
    from packaging.requirements import Requirement

    assert TEST_ONLY & _runtime_closure() == set()
    extra = {_dist(Requirement(r).name) for r in _project()["optional-dependencies"]["test"]}
    assert extra >= TEST_ONLY


def _make_dry_run(target: str) -> list[str]:
    """The commands `make TARGET` would run from a clean clone (-B: every stamp out of date)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "-C", str(ROOT), target],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if " pip install " in line]


def test_make_run_installs_the_project_without_extras() -> None:
    installs = _make_dry_run("run")
    projects = [line for line in installs if "--upgrade pip" not in line]
    assert projects, installs
    assert all(re.search(r"-e \.$", line) for line in projects), projects


def test_make_test_installs_the_test_extras() -> None:
    installs = _make_dry_run("test")
    assert any("-e '.[test]'" in line for line in installs), installs
