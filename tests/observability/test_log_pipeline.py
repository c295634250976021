"""The logging pipeline itself: redaction of every field however named or nested, readable lines
in development, idempotent configuration, and the slow-statement warning."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.driver import DriverConnection
from app.db.engine import create_engine
from app.observability.logs import configure_logging, get_logger
from app.observability.redaction import REDACTED
from app.observability.sql_observer import (
    STATEMENT_PREVIEW_CHARS,
    as_upkeep,
    instrument_engine,
    recording,
    start_counting,
    stop_counting,
)
from app.settings import Environment, Settings
from tests.observability.conftest import json_lines

KEY = "cak_Zx9-secretKeyMaterial_0123456789abcdef"
ADDRESS = "someone.private@example.org"
SIGNATURE = "t=1700000000,v1=5f2b9a0c1d3e4f567890abcdef"
PASSWORD = "correct-horse-battery-staple"
BASIC = "cG9zdG1hcms6aHVudGVyMg=="


@pytest.fixture
def production(settings: Settings) -> Settings:
    production = settings.model_copy(update={"environment": Environment.PRODUCTION})
    configure_logging(production)
    return production


def test_secrets_are_redacted_whatever_the_field_is_called(
    production: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    get_logger("test").info(
        "many_secrets",
        api_key=KEY,
        headers={"Authorization": f"Bearer {KEY}", "X-Signature": SIGNATURE, "Accept": "*/*"},
        nested={"deeper": [{"password": PASSWORD}, f"mail {ADDRESS} now", {ADDRESS: "as a key"}]},
        innocent=f"the key was {KEY} and the header Basic {BASIC}",
        webhookSecret="plain-looking-value",
        url="/webhooks/lemlist?secret=s3cr3t-in-url&x=1",
        contact_email="ordinary-looking-text",
        api_key_name="frontend",
    )
    logging.getLogger("some.library").warning("token=abc123 for %s", ADDRESS)
    output = capsys.readouterr().err
    for secret in (
        KEY,
        ADDRESS,
        SIGNATURE,
        PASSWORD,
        BASIC,
        "plain-looking-value",
        "s3cr3t-in-url",
    ):
        assert secret not in output, secret
    assert "ordinary-looking-text" not in output
    ours, library = json_lines(output)
    assert ours["event"] == "many_secrets"
    assert ours["api_key"] == REDACTED
    assert ours["headers"]["Authorization"] == REDACTED
    assert ours["headers"]["X-Signature"] == REDACTED
    assert ours["headers"]["Accept"] == "*/*", "what is not secret stays readable"
    assert ours["nested"]["deeper"][0]["password"] == REDACTED
    assert ours["api_key_name"] == "frontend", "a key's name is not the key"
    assert ours["url"].startswith("/webhooks/lemlist?secret=")
    assert library["logger"] == "some.library"
    assert library["level"] == "warning"


def test_development_lines_are_readable_and_configuration_is_idempotent(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    development = settings.model_copy(update={"environment": Environment.DEVELOPMENT})
    for _ in range(3):
        configure_logging(development)
    get_logger("test").info("readable_line", route="/graphql", api_key=KEY)
    output = capsys.readouterr().err
    lines = [line for line in output.splitlines() if "readable_line" in line]
    assert len(lines) == 1, output  # three configurations, still one handler
    assert not lines[0].lstrip().startswith("{")
    assert "route=/graphql" in lines[0]
    assert KEY not in output


async def test_slow_statements_are_logged_with_their_beginning(
    production: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    engine: AsyncEngine = create_engine(production)
    instrument_engine(engine, slow_ms=50)
    instrument_engine(engine, slow_ms=50)  # idempotent: still one warning per statement
    padding = "x" * 300
    slow = f"SELECT pg_sleep(0.2), '{padding}' AS padding"
    try:
        async with engine.connect() as connection:
            await connection.execute(text(slow))
    finally:
        await engine.dispose()
    warnings = [line for line in json_lines(capsys.readouterr().err) if line["event"] == "slow_sql"]
    assert len(warnings) == 1, warnings
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["statement"] == slow[:STATEMENT_PREVIEW_CHARS]
    assert warnings[0]["duration_ms"] >= 200
    assert warnings[0]["threshold_ms"] == 50


async def test_statements_sent_to_the_driver_are_counted_recorded_and_timed(
    production: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hot paths bypass SQLAlchemy (app.db.driver): their statements must still count for
    the request, reach the recorders and be warned about when slow, exactly once each."""
    engine: AsyncEngine = create_engine(production)
    instrument_engine(engine, slow_ms=50)
    slow, quick = "SELECT pg_sleep(0.2)", "SELECT 1"
    count, token = start_counting()
    try:
        with recording(engine) as statements:
            async with engine.connect() as connection:
                driver = await DriverConnection.under(connection)
                await driver.fetch(slow)
                await driver.execute(quick)
    finally:
        stop_counting(token)
        await engine.dispose()
    assert statements == [slow, quick]
    assert count.value == 2
    warnings = [line for line in json_lines(capsys.readouterr().err) if line["event"] == "slow_sql"]
    assert [w["statement"] for w in warnings] == [slow]
    assert warnings[0]["duration_ms"] >= 200


async def test_statements_under_the_threshold_are_not_logged(
    production: Settings, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet: Any = create_engine(production)
    instrument_engine(quiet, slow_ms=production.slow_sql_ms)
    try:
        async with quiet.connect() as connection:
            await connection.execute(text("SELECT pg_sleep(0.05)"))
    finally:
        await quiet.dispose()
    assert production.slow_sql_ms == 1000, "the documented default"
    assert "slow_sql" not in capsys.readouterr().err


def test_tracebacks_are_rendered_and_redacted(
    production: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail() -> None:
        raise ValueError(f"cannot enroll {ADDRESS} with key {KEY}")

    try:
        fail()
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        get_logger("test").exception("ours_failed")
    output = capsys.readouterr().err
    assert ADDRESS not in output
    assert KEY not in output
    stdlib, ours = json_lines(output)
    for line in (stdlib, ours):
        assert "Traceback" in line["exception"]
        assert "ValueError: cannot enroll [redacted-email]" in line["exception"]
        assert line["level"] == "error"


async def test_upkeep_statements_are_neither_counted_nor_recorded_but_still_timed(
    production: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task marked as upkeep (the activity log's pruning, the subscription holds' renewal)
    runs on a timer: a request's count and a test's recording must not pick its statements
    up, while the other tasks' statements still are."""
    engine: AsyncEngine = create_engine(production)
    instrument_engine(engine, slow_ms=50)

    async def statement(sql: str, upkeep: bool) -> None:
        if upkeep:
            as_upkeep()
        async with engine.connect() as connection:
            await (await DriverConnection.under(connection)).fetch(sql)

    count, token = start_counting()
    try:
        with recording(engine) as statements:
            await asyncio.gather(
                asyncio.create_task(statement("SELECT pg_sleep(0.1)", upkeep=True)),
                asyncio.create_task(statement("SELECT 2", upkeep=False)),
            )
    finally:
        stop_counting(token)
        await engine.dispose()
    assert statements == ["SELECT 2"]
    assert count.value == 1
    warnings = [line for line in json_lines(capsys.readouterr().err) if line["event"] == "slow_sql"]
    assert [w["statement"] for w in warnings] == ["SELECT pg_sleep(0.1)"]
