"""The per-process LISTEN connection (``app.db.notifications``) against a real server: only
committed notifications are heard, every handler of a channel hears them, and when its
connection is killed it listens again and says so (its users re-read what they missed)."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.engine import make_url

from app.db.notifications import Notifications

CHANNEL = "campaign_test_channel"


def dsn_of(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def next_of(queue: asyncio.Queue[str]) -> str:
    return await asyncio.wait_for(queue.get(), timeout=10)  # a bound against a hang


async def test_committed_notifications_reach_every_handler_and_rolled_back_ones_none(
    database_url: str,
) -> None:
    first: asyncio.Queue[str] = asyncio.Queue()
    second: asyncio.Queue[str] = asyncio.Queue()
    listener = Notifications(dsn_of(database_url), "test")
    listener.on(CHANNEL, first.put_nowait)
    listener.on(CHANNEL, second.put_nowait)
    listener.start()
    writer = await asyncpg.connect(dsn_of(database_url))
    try:
        await asyncio.wait_for(listener.listening.wait(), timeout=10)
        async with writer.transaction():
            await writer.execute("SELECT pg_notify($1, 'kept')", CHANNEL)
            assert first.empty(), "announced before its transaction committed"
        tx = writer.transaction()
        await tx.start()
        await writer.execute("SELECT pg_notify($1, 'rolled back')", CHANNEL)
        await tx.rollback()
        await writer.execute("SELECT pg_notify($1, 'after')", CHANNEL)
        assert [await next_of(first), await next_of(first)] == ["kept", "after"]
        assert [await next_of(second), await next_of(second)] == ["kept", "after"]
    finally:
        await writer.close()
        await listener.close()


async def test_a_killed_connection_is_replaced_and_announced(database_url: str) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    connected: asyncio.Queue[str] = asyncio.Queue()
    listener = Notifications(dsn_of(database_url), "test-reconnect")
    listener.on(CHANNEL, heard.put_nowait)
    listener.on_connected(lambda: connected.put_nowait("listening"))
    listener.start()
    admin = await asyncpg.connect(dsn_of(database_url))
    try:
        assert await next_of(connected) == "listening"
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'campaign-api-test-reconnect'"
        )
        assert killed == 1
        assert await next_of(connected) == "listening", "it listens again after the kill"
        await asyncio.wait_for(listener.listening.wait(), timeout=10)
        await admin.execute("SELECT pg_notify($1, 'after the kill')", CHANNEL)
        assert await next_of(heard) == "after the kill"
    finally:
        await admin.close()
        await listener.close()
