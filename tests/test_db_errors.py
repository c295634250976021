"""Which failures count as "the database is unavailable": real failures provoked on a real
server where that can be done on demand, the server-side codes that cannot (a server shutting
down or starting up) as the driver's own exception classes."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import create_engine
from app.db.errors import is_database_unavailable
from app.settings import Settings


async def _raised(work: Awaitable[object]) -> BaseException:
    try:
        await work
    except Exception as exc:
        return exc
    pytest.fail("the operation did not fail")


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def test_a_refused_connection_is_unavailability(settings: Settings) -> None:
    nowhere = make_url(settings.database_url or "").set(host="127.0.0.1", port=1)
    engine = create_engine(settings, nowhere.render_as_string(hide_password=False))
    try:
        assert is_database_unavailable(await _raised(_select_one(engine)))
    finally:
        await engine.dispose()


async def test_an_exhausted_pool_is_unavailability(settings: Settings) -> None:
    tiny = settings.model_copy(update={"pool_size": 1, "max_overflow": 0, "pool_timeout_s": 0.2})
    engine = create_engine(tiny)
    try:
        async with engine.connect():
            assert is_database_unavailable(await _raised(_select_one(engine)))
    finally:
        await engine.dispose()


async def test_a_connection_the_server_terminated_is_unavailability(engine: AsyncEngine) -> None:
    async with engine.connect() as victim, engine.connect() as killer:
        pid = await victim.scalar(text("SELECT pg_backend_pid()"))
        assert await killer.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        assert is_database_unavailable(await _raised(victim.execute(text("SELECT 1"))))


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELEC 1", id="syntax-error"),
        pytest.param("SELECT 1 / 0", id="division-by-zero"),
        pytest.param("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)", id="statement-timeout"),
        pytest.param("SELECT * FROM no_such_table", id="undefined-table"),
    ],
)
async def test_a_failing_statement_is_not_unavailability(engine: AsyncEngine, sql: str) -> None:
    async def run() -> None:
        async with engine.begin() as connection:
            for statement in sql.split("; "):
                await connection.execute(text(statement))

    assert not is_database_unavailable(await _raised(run()))


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        pytest.param(asyncpg.AdminShutdownError("terminating"), True, id="57P01-admin-shutdown"),
        pytest.param(asyncpg.CrashShutdownError("crash"), True, id="57P02-crash-shutdown"),
        pytest.param(asyncpg.CannotConnectNowError("starting up"), True, id="57P03-starting"),
        pytest.param(asyncpg.ConnectionFailureError("lost"), True, id="08006-failure"),
        pytest.param(asyncpg.ConnectionDoesNotExistError("gone"), True, id="08003-gone"),
        pytest.param(asyncpg.InterfaceError("connection is closed"), True, id="closed"),
        pytest.param(asyncpg.InterfaceError("another operation is in progress"), False, id="busy"),
        pytest.param(asyncpg.UniqueViolationError("duplicate key"), False, id="23505-unique"),
        pytest.param(asyncpg.QueryCanceledError("statement timeout"), False, id="57014-timeout"),
        pytest.param(TimeoutError(), True, id="connect-timeout"),
        pytest.param(ValueError("not a database problem"), False, id="value-error"),
    ],
)
def test_driver_errors_are_classified_by_their_code(exc: Exception, unavailable: bool) -> None:
    assert is_database_unavailable(exc) is unavailable


def test_a_missing_file_is_not_unavailability(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as raised:
        (tmp_path / "absent").read_text()
    assert not is_database_unavailable(raised.value)


def _load() -> None:
    try:
        raise ConnectionRefusedError(111, "Connect call failed")
    except ConnectionRefusedError as refused:
        raise RuntimeError("while loading") from refused


def _buggy_handler() -> None:
    try:
        raise ConnectionRefusedError(111, "Connect call failed")
    except ConnectionRefusedError:
        raise KeyError("a bug in the handler")  # noqa: B904 -- the implicit context is the point


def test_an_error_raised_from_an_outage_is_unavailability() -> None:
    with pytest.raises(RuntimeError) as raised:
        _load()
    assert is_database_unavailable(raised.value)


def test_an_unrelated_error_raised_while_handling_an_outage_is_not() -> None:
    with pytest.raises(KeyError) as raised:
        _buggy_handler()
    assert type(raised.value.__context__) is ConnectionRefusedError
    assert not is_database_unavailable(raised.value)
