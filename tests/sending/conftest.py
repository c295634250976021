"""The sender's test bench: fake providers on loopback, settings pointing at them, campaigns
built through the services, and a sender running in this process (or as subprocesses)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cli.worker import options_from
from app.db.engine import create_engine, create_sessionmaker
from app.providers.clients import build_clients
from app.providers.http import create_client
from app.settings import Settings
from app.worker.sender import SenderLoop, SenderOptions
from testkit.campaigns import SENDING_CONFIG, Campaign, build_campaign, contact
from testkit.fake_providers import (
    LEMLIST_KEY,
    PHANTOMBUSTER_KEY,
    POSTMARK_TOKEN,
    FakeProviders,
)


@pytest.fixture
async def providers() -> AsyncIterator[FakeProviders]:
    fake = FakeProviders()
    await fake.start()
    yield fake
    await fake.close()


def sending_settings(settings: Settings, base_url: str, **overrides: Any) -> Settings:
    """The test settings, sending to the fakes with fast retries and a short lease."""
    values: dict[str, Any] = {
        "postmark_api_url": base_url,
        "postmark_server_token": SecretStr(POSTMARK_TOKEN),
        "phantombuster_api_url": base_url,
        "phantombuster_api_key": SecretStr(PHANTOMBUSTER_KEY),
        "lemlist_api_url": base_url,
        "lemlist_api_key": SecretStr(LEMLIST_KEY),
        "send_retry_base_s": 0.05,
        "send_retry_max_s": 0.4,
        "send_max_attempts": 4,
        "send_lease_s": 3.0,
        "send_idle_s": 2.0,
        "send_http_timeout_s": 5.0,
        "send_batch": 200,
        "send_concurrency": 16,
    }
    return settings.model_copy(update=values | overrides)


@pytest.fixture
def sender_settings(settings: Settings, providers: FakeProviders) -> Settings:
    return sending_settings(settings, providers.base_url)


def dsn_of(settings: Settings) -> str:
    assert settings.database_url is not None
    return make_url(settings.database_url).set(drivername="postgresql").render_as_string(False)


@contextlib.asynccontextmanager
async def running_sender(
    settings: Settings, options: SenderOptions | None = None
) -> AsyncIterator[SenderLoop]:
    """A sender in this process until the block ends (then stopped as SIGTERM stops it)."""
    engine = create_engine(settings.model_copy(update={"pool_size": 5, "max_overflow": 0}))
    http = create_client(settings.send_http_timeout_s, settings.send_concurrency)
    sender = SenderLoop(
        engine,
        dsn_of(settings),
        build_clients(settings, http),
        options or options_from(settings, None, None),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        yield sender
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            await http.aclose()
            await engine.dispose()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    """Wait for ``check`` to hold (the sender works in the background); fail after timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {check.__name__}")
        await asyncio.sleep(0.05)


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


@pytest.fixture
def app_sessionmaker(engine: AsyncEngine, clean_db: None) -> async_sessionmaker[AsyncSession]:
    """Sessions that commit (the sender must see the campaign); tables emptied afterwards."""
    return create_sessionmaker(engine)


__all__ = ["SENDING_CONFIG", "Campaign", "build_campaign", "contact"]
