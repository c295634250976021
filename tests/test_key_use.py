"""``last_used_at``: written off the request path, at most once a minute per key.

Requests never write: with the key cache off, so that every request looks its key up, ten
requests run no UPDATE at all; the recorder then writes their use in one statement, and ten
more requests within the minute make it write nothing. Counted by statements, not by timing.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.observability.sql_observer import recording
from app.security.api_keys import Principal, create_api_key, record_key_use
from app.security.key_cache import KeyCache
from app.security.key_use import KeyUseRecorder
from app.settings import Settings
from app.web import asgi
from app.web.asgi import create_app

QUERY = {"query": "{ templates { totalCount } }"}
READ = frozenset({Scope.READ})
REQUESTS = 10


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _writes_only_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder's periodic write is an hour apart here, so that only the tests' own
    ``flush()`` calls write and the counts are exact (one test shortens it again)."""
    monkeypatch.setattr(asgi, "KeyUseRecorder", functools.partial(KeyUseRecorder, every_s=3600))


@asynccontextmanager
async def _served(settings: Settings, cache_s: float) -> AsyncIterator[tuple[Starlette, Any]]:
    app = create_app(settings.model_copy(update={"auth_cache_s": cache_s}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def _make_key(app: Starlette, name: str) -> str:
    async with app.state.sessionmaker.begin() as session:
        return await create_api_key(session, name, READ)


async def _requests(client: httpx.AsyncClient, key: str, count: int = REQUESTS) -> None:
    for _ in range(count):
        response = await client.post("/graphql", json=QUERY, headers={"x-api-key": key})
        assert response.status_code == 200, response.text


def _lookups(statements: list[str]) -> int:
    return sum("FROM api_keys" in statement for statement in statements)


def _updates(statements: list[str]) -> list[str]:
    """Statements that write api_keys, however they are phrased (a CTE included)."""
    return [s for s in statements if "UPDATE API_KEYS" in " ".join(s.upper().split())]


async def _last_used(engine: AsyncEngine, name: str) -> datetime | None:
    async with engine.connect() as connection:
        sql = text("SELECT last_used_at FROM api_keys WHERE name = :n")
        value: datetime | None = (await connection.execute(sql, {"n": name})).scalar_one()
        return value


async def test_requests_within_a_minute_write_the_keys_use_once(
    settings: Settings, clean_db: None
) -> None:
    async with _served(settings, cache_s=0) as (app, client):
        key = await _make_key(app, "busy")
        with (
            recording(app.state.engine) as request_statements,
            recording(app.state.key_use.engine) as use_statements,
        ):
            await _requests(client, key)
            assert _lookups(request_statements) == REQUESTS  # the cache is off: looked up each time
            assert _updates(request_statements) == []  # and never written on the way
            await app.state.key_use.flush()
            assert len(_updates(use_statements)) == 1
            used = await _last_used(app.state.engine, "busy")
            assert used is not None

            await _requests(client, key)
            await app.state.key_use.flush()
            assert len(_updates(use_statements)) == 1  # nothing more within the minute
        assert await _last_used(app.state.engine, "busy") == used


async def test_keys_served_from_the_cache_count_as_used_and_are_written_together(
    settings: Settings, clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(asgi, "KeyCache", functools.partial(KeyCache, clock=clock))
    async with _served(settings, cache_s=300) as (app, client):
        keys = {name: await _make_key(app, name) for name in ("one", "two", "three")}
        for key in keys.values():
            await _requests(client, key, 3)
        with recording(app.state.key_use.engine) as statements:
            await app.state.key_use.flush()
        assert len(_updates(statements)) == 1  # one set-based statement for the three keys
        for name in keys:
            assert await _last_used(app.state.engine, name) is not None

        # A minute on (by the process's clock), the cached key's next use is queued again.
        clock.now += 60
        await _requests(client, keys["one"], 1)
        with recording(app.state.key_use.engine) as statements:
            await app.state.key_use.flush()
        assert len(_updates(statements)) == 1


async def test_the_recorder_writes_on_its_own_every_few_seconds(
    settings: Settings, engine: AsyncEngine, clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asgi, "KeyUseRecorder", functools.partial(KeyUseRecorder, every_s=0.05))
    async with _served(settings, cache_s=0) as (app, client):
        key = await _make_key(app, "ticking")
        await _requests(client, key, 1)
        for _ in range(200):
            if await _last_used(engine, "ticking") is not None:
                break
            await asyncio.sleep(0.05)
        assert await _last_used(engine, "ticking") is not None


async def test_the_use_still_queued_is_written_at_shutdown(
    settings: Settings, engine: AsyncEngine, clean_db: None
) -> None:
    async with _served(settings, cache_s=0) as (app, client):
        key = await _make_key(app, "last-words")
        await _requests(client, key, 1)
    assert await _last_used(engine, "last-words") is not None


async def test_the_database_skips_a_write_soon_after_the_last(
    engine: AsyncEngine, clean_db: None
) -> None:
    """Several processes each write a key's use once a minute; the database keeps the first
    write of any fifty seconds, so they do not each overwrite it."""
    async with engine.begin() as connection:
        insert = text(
            "INSERT INTO api_keys (name, key_hash, scopes)"
            " VALUES ('shared', repeat('a', 64), ARRAY['read']) RETURNING id"
        )
        key_id = (await connection.execute(insert)).scalar_one()
        await record_key_use(connection, [key_id])
    first = await _last_used(engine, "shared")
    async with engine.begin() as connection:
        await record_key_use(connection, [key_id])
        later = (await connection.execute(text("SELECT now()"))).scalar_one()
    assert first is not None
    assert later > first  # the second write came later...
    assert await _last_used(engine, "shared") == first  # ...and was skipped


async def test_a_failed_write_is_dropped_without_raising(settings: Settings) -> None:
    unreachable = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://u@127.0.0.1:1/none", "pool_timeout_s": 2}
    )
    cache = KeyCache(ttl_s=0)
    recorder = KeyUseRecorder(unreachable, cache)
    cache.remember("a" * 64, Principal(key_id=uuid.uuid4(), name="k", scopes=READ))
    await recorder.close()  # its last flush fails: logged and dropped, nothing raised
    assert cache.take_uses() == set()
