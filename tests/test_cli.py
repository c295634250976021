"""The ``campaign-api`` command, run as a subprocess as an operator would run it.

A bad configuration or an unusable database ends the command with exit code 2 and exactly one
line on stderr, ``campaign-api: ...``: no traceback, and never the database password.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

CLI = Path(sys.executable).parent / "campaign-api"
TIMEOUT_S = 60


def _environment(**values: str) -> dict[str, str]:
    """This process's environment without any database or service setting, plus ``values``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "PYTHONWARNINGS") and not key.startswith("CAMPAIGN_")
    }
    env.update(values)
    return env


def _run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert CLI.exists(), f"{CLI} is missing: install the project (make test does)"
    return subprocess.run(
        [str(CLI), *args],
        env=_environment(**env),
        cwd=cwd,  # a scratch directory: nothing may land in the repository's .data/
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _assert_one_line_failure(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    report = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, report
    assert result.returncode == 2, report
    lines = result.stderr.splitlines()
    assert len(lines) == 1, report
    (line,) = lines
    assert line.startswith("campaign-api: "), report
    for fragment in expected:
        assert fragment in line, report
    return line


# --- a broken configuration ---------------------------------------------------------------


def test_production_without_database_url_fails_in_one_line(tmp_path: Path) -> None:
    result = _run(tmp_path, "migrate", CAMPAIGN_ENVIRONMENT="production")
    _assert_one_line_failure(result, "DATABASE_URL")
    assert not (tmp_path / ".data").exists()  # the embedded server was not started


def test_a_non_postgresql_url_fails_in_one_line(tmp_path: Path) -> None:
    result = _run(tmp_path, "migrate", DATABASE_URL="mysql://x@y/z")
    _assert_one_line_failure(result, "DATABASE_URL", "PostgreSQL")


def test_a_malformed_url_fails_in_one_line(tmp_path: Path) -> None:
    result = _run(tmp_path, "migrate", DATABASE_URL="not a url")
    _assert_one_line_failure(result, "DATABASE_URL")


def test_an_unreachable_database_fails_fast_in_one_line(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _run(tmp_path, "migrate", DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere")
    elapsed = time.monotonic() - started
    _assert_one_line_failure(result, "cannot use the database", "127.0.0.1:1/nowhere")
    assert elapsed < 20, f"took {elapsed:.1f}s"


@pytest.mark.parametrize("command", [("migrate",), ("api-key", "list")])
def test_a_database_failure_never_shows_the_password(tmp_path: Path, command: tuple[str]) -> None:
    result = _run(tmp_path, *command, DATABASE_URL="postgresql://u:s3cret@127.0.0.1:1/db")
    _assert_one_line_failure(result, "cannot use the database", "127.0.0.1:1/db")
    assert "s3cret" not in result.stderr + result.stdout


def test_export_schema_needs_no_configuration(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        "export-schema",
        CAMPAIGN_ENVIRONMENT="production",  # and no DATABASE_URL
        CAMPAIGN_PORT="not a port",
    )
    assert result.returncode == 0, result.stderr
    assert "type Query" in result.stdout
    assert result.stderr == ""


# --- API keys, against the test database ----------------------------------------------------


def test_an_unknown_scope_is_refused_in_one_line(tmp_path: Path, database_url: str) -> None:
    result = _run(
        tmp_path,
        "api-key",
        "create",
        "--name",
        f"cli-bogus-{uuid.uuid4().hex[:8]}",
        "--scopes",
        "read,bogus",
        DATABASE_URL=database_url,
    )
    _assert_one_line_failure(result, "bogus", "scope")


@pytest.fixture
async def key_name(engine: AsyncEngine) -> AsyncIterator[str]:
    """A fresh API key name; its rows are deleted afterwards, whatever the test left."""
    name = f"cli-test-{uuid.uuid4().hex[:8]}"
    yield name
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM api_keys WHERE name = :n"), {"n": name})


@pytest.mark.slow
def test_api_key_create_list_revoke(tmp_path: Path, database_url: str, key_name: str) -> None:
    def cli(*args: str) -> str:
        result = _run(tmp_path, "api-key", *args, DATABASE_URL=database_url)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result.stdout

    created = cli("create", "--name", key_name, "--scopes", "write,read")
    (key,) = [line.strip() for line in created.splitlines() if line.strip().startswith("cak_")]
    # The prefix, then 32 random bytes in URL-safe base64 without padding: 43 characters.
    assert re.fullmatch(r"cak_[A-Za-z0-9_-]{43}", key), key
    assert created.count(key) == 1

    def listed() -> str:
        (row,) = [line for line in cli("list").splitlines() if line.split("\t")[0] == key_name]
        return row

    before = cli("list")
    assert key not in before
    assert listed().split("\t")[1:3] == ["read,write", "active"]

    assert key_name in cli("revoke", key_name)

    after = cli("list")
    assert key not in after
    assert listed().split("\t")[2] == "revoked"


# --- a database that is reachable but cannot be migrated -------------------------------------


async def _admin(server_url: str, sql: str, database: str = "postgres") -> None:
    dsn = make_url(server_url).set(drivername="postgresql", database=database)
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
def scratch_database(server_url: str) -> Iterator[tuple[str, str]]:
    """An empty database of its own: (name, URL); dropped afterwards."""
    name = f"campaign_cli_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield name, make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param("CREATE TABLE api_keys (id integer)", id="conflicting-table"),
        pytest.param(
            "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
            "INSERT INTO alembic_version VALUES ('29991231_9999')",
            id="revision-from-a-newer-release",
        ),
    ],
)
def test_a_failing_migration_is_reported_in_one_line(
    tmp_path: Path, server_url: str, scratch_database: tuple[str, str], setup: str
) -> None:
    name, url = scratch_database
    asyncio.run(_admin(server_url, setup, database=name))
    result = _run(tmp_path, "migrate", DATABASE_URL=url)
    _assert_one_line_failure(result, name)
