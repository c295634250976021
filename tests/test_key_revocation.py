"""Instant revocation: every change to a key that can end a secret's validity is NOTIFYed by the
database in the changing transaction, whatever made it, and a process's key cache drops the key
when it hears it (and everything when its LISTEN connection comes back). The cache's TTL is set
long here (300 s), so only the notification can explain a refusal; the waits are bounds against
a hang, not timings. Across two server processes and the CLI: tests/test_revocation_processes.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from app.db.notifications import Notifications
from app.domain.enums import Scope
from app.security.api_keys import (
    Principal,
    create_api_key,
    record_key_use,
    revoke_api_key,
    rotate_api_key,
)
from app.security.key_cache import KEY_CHANGES_CHANNEL, KeyCache, follow_key_changes
from app.settings import Settings
from app.web.asgi import create_app
from tests.conftest import _make_key

LONG_TTL_S = 300.0
HANG_BOUND_S = 10.0
QUERY = {"query": "{ templates { totalCount } }"}


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def _listening(database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    heard: asyncio.Queue[str] = asyncio.Queue()
    connection = await asyncpg.connect(_dsn(database_url))
    await connection.add_listener(KEY_CHANGES_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        yield heard
    finally:
        await connection.close()


async def _next(heard: asyncio.Queue[str]) -> str:
    return await asyncio.wait_for(heard.get(), timeout=HANG_BOUND_S)


async def _key_id(app: Starlette, name: str) -> str:
    async with app.state.engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT id FROM api_keys WHERE name = :n"), {"n": name}
        )
    return str(found)


async def test_every_change_that_can_end_a_secret_is_announced_with_the_key_id(
    app: Starlette, database_url: str
) -> None:
    """Rotation, new expiry, revocation and deletion announce; a use write, a rolled-back
    revocation and a key's creation do not (the last message is a marker: nothing came first)."""
    sessions = app.state.sessionmaker
    async with _listening(database_url) as heard:
        async with sessions.begin() as session:
            await create_api_key(session, "changing", frozenset({Scope.READ}))
        key_id = await _key_id(app, "changing")
        async with app.state.engine.begin() as connection:
            await record_key_use(connection, [uuid.UUID(key_id)])
        async with sessions() as session, session.begin():
            await revoke_api_key(session, "changing")
            await session.rollback()
        async with app.state.engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_notify(:c, 'marker')"), {"c": KEY_CHANGES_CHANNEL}
            )
        assert await _next(heard) == "marker"

        async with sessions.begin() as session:
            await rotate_api_key(session, "changing", grace=timedelta(hours=1))
        assert await _next(heard) == key_id
        async with sessions.begin() as session:
            await rotate_api_key(session, "changing", expires_in=timedelta(days=1))
        assert await _next(heard) == key_id
        async with sessions.begin() as session:
            await revoke_api_key(session, "changing")
        assert await _next(heard) == key_id
        async with app.state.engine.begin() as connection:
            await connection.execute(text("DELETE FROM api_keys WHERE name = 'changing'"))
        assert await _next(heard) == key_id
        assert heard.empty()


async def _status(client: httpx.AsyncClient, key: str) -> int:
    return (await client.post("/graphql", json=QUERY, headers={"x-api-key": key})).status_code


async def _refused_within_bound(client: httpx.AsyncClient, key: str) -> None:
    async with asyncio.timeout(HANG_BOUND_S):
        while True:
            if await _status(client, key) == 401:
                return
            await asyncio.sleep(0.02)


@asynccontextmanager
async def _served(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings.model_copy(update={"auth_cache_s": LONG_TTL_S}))
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.notifications.listening.wait(), HANG_BOUND_S)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def test_a_cached_key_is_refused_once_its_revocation_is_heard(
    settings: Settings, clean_db: None
) -> None:
    async with _served(settings) as (app, client):
        key = await _make_key(app, "leaving", frozenset({Scope.READ}))
        staying = await _make_key(app, "staying", frozenset({Scope.READ}))
        assert await _status(client, key) == 200
        assert await _status(client, staying) == 200
        async with app.state.sessionmaker.begin() as session:
            await revoke_api_key(session, "leaving")
        await _refused_within_bound(client, key)
        assert await _status(client, staying) == 200


async def test_a_rotation_without_grace_refuses_the_cached_old_secret(
    settings: Settings, clean_db: None
) -> None:
    async with _served(settings) as (app, client):
        old = await _make_key(app, "rotating", frozenset({Scope.READ}))
        assert await _status(client, old) == 200
        async with app.state.sessionmaker.begin() as session:
            new = await rotate_api_key(session, "rotating", grace=timedelta(0))
        await _refused_within_bound(client, old)
        assert await _status(client, new) == 200


def _principal() -> Principal:
    return Principal(key_id=uuid.uuid4(), name="k", scopes=frozenset({Scope.READ}))


def test_forget_drops_every_secret_of_that_key_only() -> None:
    cache = KeyCache(ttl_s=LONG_TTL_S)
    rotated, other = _principal(), _principal()
    cache.remember("a" * 64, rotated)
    cache.remember("b" * 64, rotated)  # its previous secret, in its grace
    cache.remember("c" * 64, other)
    cache.forget(rotated.key_id)
    assert (cache.get("a" * 64), cache.get("b" * 64), cache.get("c" * 64)) == (None, None, other)


def test_a_lookup_that_raced_a_revocation_is_not_remembered() -> None:
    """The lookup read the key before the revocation committed; the notification came before
    its answer was remembered: remembering it would serve a revoked key for the whole TTL."""
    cache = KeyCache(ttl_s=LONG_TTL_S)
    principal = _principal()
    before_lookup = cache.epoch
    cache.forget_announced(str(principal.key_id))
    cache.remember("a" * 64, principal, as_of=before_lookup)
    assert cache.get("a" * 64) is None
    cache.remember("a" * 64, principal, as_of=cache.epoch)
    assert cache.get("a" * 64) is principal


async def test_the_whole_cache_is_dropped_when_the_listen_connection_comes_back(
    database_url: str,
) -> None:
    """Revocations announced while the connection was down were not heard."""
    cache = KeyCache(ttl_s=LONG_TTL_S)
    notifications = Notifications(_dsn(database_url), "test-key-cache")
    connected: asyncio.Queue[str] = asyncio.Queue()
    follow_key_changes(cache, notifications)
    notifications.on_connected(lambda: connected.put_nowait("listening"))
    notifications.start()
    admin: Any = await asyncpg.connect(_dsn(database_url))
    try:
        assert await _next(connected) == "listening"
        principal = _principal()
        cache.remember("a" * 64, principal)
        assert cache.get("a" * 64) is principal
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'campaign-api-test-key-cache'"
        )
        assert killed == 1
        assert await _next(connected) == "listening"
        assert cache.get("a" * 64) is None
    finally:
        await admin.close()
        await notifications.close()
