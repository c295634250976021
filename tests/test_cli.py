"""The ``campaign-api`` command, run as a subprocess as an operator would run it.

A bad configuration or an unusable database ends the command with exit code 2 and exactly one
line on stderr, ``campaign-api: ...``: no traceback, and never the database password.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli.common import CommandError, describe_duration, parse_duration
from app.db import migrate
from app.security.api_keys import authenticate

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
    assert before.splitlines()[0].split("\t") == [
        "NAME",
        "SCOPES",
        "STATE",
        "CREATED",
        "EXPIRES",
        "LAST USED",
        "OLD SECRET UNTIL",
    ]
    assert listed().split("\t")[1:3] == ["read,write", "active"]

    assert key_name in cli("revoke", key_name)

    after = cli("list")
    assert key not in after
    assert listed().split("\t")[2] == "revoked"


def _listed(tmp_path: Path, database_url: str, name: str) -> dict[str, str]:
    """Key ``name``'s row of ``api-key list``, by the header's column names."""
    result = _run(tmp_path, "api-key", "list", DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
    (row,) = [row for row in rows if row[0] == name]
    return dict(zip(header, row, strict=True))


def _only_key(output: str) -> str:
    (key,) = [line.strip() for line in output.splitlines() if line.strip().startswith("cak_")]
    return key


async def _verifies(engine: AsyncEngine, key: str) -> bool:
    async with engine.connect() as connection:
        return await authenticate(connection, key) is not None


@pytest.mark.slow
async def test_api_key_expiry_and_rotation(
    tmp_path: Path, database_url: str, engine: AsyncEngine, key_name: str
) -> None:
    def cli(*args: str) -> str:
        result = _run(tmp_path, "api-key", *args, DATABASE_URL=database_url)
        assert result.returncode == 0, result.stderr
        return result.stdout

    created = cli("create", "--name", key_name, "--expires-in", "90d")
    assert "expires in 90 days" in created
    first = _only_key(created)
    row = _listed(tmp_path, database_url, key_name)
    expires = datetime.fromisoformat(row["EXPIRES"])
    assert expires - datetime.fromisoformat(row["CREATED"]) == timedelta(days=90)
    assert (row["STATE"], row["LAST USED"], row["OLD SECRET UNTIL"]) == ("active", "never", "-")

    rotated = cli("rotate", key_name)
    assert "24 hours" in rotated or "1 day" in rotated
    second = _only_key(rotated)
    assert second != first
    assert rotated.count(second) == 1
    row = _listed(tmp_path, database_url, key_name)
    grace_ends = datetime.fromisoformat(row["OLD SECRET UNTIL"])
    assert grace_ends - datetime.fromisoformat(row["CREATED"]) >= timedelta(hours=24)
    assert datetime.fromisoformat(row["EXPIRES"]) == expires  # a rotation keeps the expiry
    assert await _verifies(engine, first)
    assert await _verifies(engine, second)

    third = _only_key(cli("rotate", key_name, "--grace", "0s", "--expires-in", "12h"))
    assert not await _verifies(engine, first)  # ended with the second rotation
    assert not await _verifies(engine, second)  # no grace asked for
    assert await _verifies(engine, third)
    row = _listed(tmp_path, database_url, key_name)
    assert row["OLD SECRET UNTIL"] == "-"
    assert datetime.fromisoformat(row["EXPIRES"]) < expires


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("create", "--expires-in", "90 days"), "--expires-in", id="malformed"),
        pytest.param(("create", "--expires-in", "0d"), "longer than 0", id="zero"),
        pytest.param(("rotate", "--grace", "1 day"), "--grace", id="malformed grace"),
    ],
)
def test_an_unusable_duration_is_refused_in_one_line(
    tmp_path: Path, database_url: str, key_name: str, args: tuple[str, ...], expected: str
) -> None:
    command, *options = args
    target = ("--name", key_name) if command == "create" else (key_name,)
    result = _run(tmp_path, "api-key", command, *target, *options, DATABASE_URL=database_url)
    _assert_one_line_failure(result, expected)
    assert "cak_" not in result.stdout


@pytest.mark.parametrize(
    ("older_than", "said"),
    [("30d", "30 days"), ("36h", "36 hours")],
)
def test_orphans_purge_says_the_age_in_words(
    tmp_path: Path, database_url: str, older_than: str, said: str
) -> None:
    result = _run(
        tmp_path, "orphans", "purge", "--older-than", older_than, DATABASE_URL=database_url
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"purged \d+ orphaned events older than {said}\n", result.stdout)


# --- a database that is reachable but cannot be migrated -------------------------------------


async def _admin(server_url: str, sql: str, database: str = "postgres") -> None:
    dsn = make_url(server_url).set(drivername="postgresql", database=database)
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
def scratch_database(new_database: Callable[[str], tuple[str, str]]) -> tuple[str, str]:
    """An empty database of its own: (name, URL)."""
    return new_database("campaign_cli")


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


# --- a database nobody migrated --------------------------------------------------------------

NOT_MIGRATED = "database is not migrated: run `campaign-api migrate`"


@pytest.mark.parametrize(
    "command",
    [
        ("api-key", "list"),
        ("seed",),
        ("orphans", "relink"),
        ("dispatch", "status"),
        ("serve", "--port", "1"),  # refused before it would try to listen
    ],
    ids=" ".join,
)
def test_an_unmigrated_database_says_run_migrate(
    tmp_path: Path, scratch_database: tuple[str, str], command: tuple[str, ...]
) -> None:
    _, url = scratch_database
    result = _run(tmp_path, *command, DATABASE_URL=url)
    _assert_one_line_failure(result, NOT_MIGRATED)


def test_a_driver_error_past_sqlalchemy_is_one_line_too(
    tmp_path: Path, server_url: str, scratch_database: tuple[str, str]
) -> None:
    """``orphans relink`` sends its statement straight through asyncpg (app.db.driver)."""
    name, url = scratch_database
    migrate.upgrade(url)
    asyncio.run(_admin(server_url, "DROP TABLE campaign_events CASCADE", database=name))
    result = _run(tmp_path, "orphans", "relink", DATABASE_URL=url)
    _assert_one_line_failure(result, "cannot use the database", "campaign_events")


def test_a_database_behind_this_release_says_run_migrate(
    tmp_path: Path, scratch_database: tuple[str, str]
) -> None:
    _, url = scratch_database
    migrate.upgrade(url, "20261207_0003")
    result = _run(tmp_path, "api-key", "list", DATABASE_URL=url)
    _assert_one_line_failure(result, "20261207_0003", "run `campaign-api migrate`")


# --- a second `make run` ---------------------------------------------------------------------


def test_dev_on_a_busy_port_says_so_before_doing_anything(
    tmp_path: Path, server_url: str, scratch_database: tuple[str, str]
) -> None:
    name, url = scratch_database
    with socket.socket() as other:  # the first `make run`
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = _run(
            tmp_path,
            "dev",
            DATABASE_URL=url,
            CAMPAIGN_PORT=str(port),
            CAMPAIGN_DATA_DIR=str(tmp_path / "data"),
        )
    _assert_one_line_failure(result, f"port {port} is in use (another campaign-api?)")
    assert "cak_" not in result.stdout  # no key printed
    assert not (tmp_path / "data" / "dev-api-key").exists()
    tables = asyncio.run(
        _fetch(server_url, name, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    )
    assert tables == 0  # not even migrated


async def _fetch(server_url: str, database: str, sql: str) -> Any:
    dsn = make_url(server_url).set(drivername="postgresql", database=database)
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


# --- durations, in-process -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "duration", "said"),
    [
        ("90d", timedelta(days=90), "90 days"),
        ("12h", timedelta(hours=12), "12 hours"),
        ("30m", timedelta(minutes=30), "30 minutes"),
        ("90s", timedelta(seconds=90), "90 seconds"),
        ("2W", timedelta(weeks=2), "14 days"),
        ("1m", timedelta(minutes=1), "1 minute"),
        ("0s", timedelta(0), "0 seconds"),
    ],
)
def test_durations_read_and_said(text: str, duration: timedelta, said: str) -> None:
    assert parse_duration(text, "--x") == duration
    assert describe_duration(duration) == said


@pytest.mark.parametrize(
    "text", ["", "d", "90", "-1d", "1.5h", "90 d", "1y", "9999999999w", "999999999w"]
)
def test_a_malformed_duration_names_its_option(text: str) -> None:
    with pytest.raises(CommandError, match="--expires-in"):
        parse_duration(text, "--expires-in")
