"""The key cache: a verified key is looked up once per CAMPAIGN_AUTH_CACHE_S, and a revoked key
stops working once that time has passed when its revocation was not heard (at once with the
cache off; heard, at once: tests/test_key_revocation.py); a key that expires (or a
rotated-out secret whose grace ends) is forgotten then, however long the TTL. It also queues
each key's use for a write at most once a minute. Time is a fake clock the tests step forward:
nothing here waits out a TTL (tests/test_key_expiry_rotation.py does, on the database's
clock)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.observability.sql_observer import recording
from app.security.api_keys import Principal, revoke_api_key
from app.security.key_cache import KeyCache
from app.settings import Settings
from app.web import asgi
from app.web.asgi import create_app
from tests.conftest import _make_key

QUERY = {"query": "{ templates { totalCount } }"}
START = 1_000.0  # where every fake clock starts


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _principal(name: str, valid_for_s: float | None = None) -> Principal:
    return Principal(
        key_id=uuid.uuid4(), name=name, scopes=frozenset({Scope.READ}), valid_for_s=valid_for_s
    )


def test_a_remembered_key_is_served_until_its_time_is_up() -> None:
    clock = Clock()
    cache = KeyCache(ttl_s=30, clock=clock)
    reader = _principal("reader")
    cache.remember("a" * 64, reader)
    assert cache.get("a" * 64) is reader
    assert cache.get("b" * 64) is None
    clock.now = START + 29.999
    assert cache.get("a" * 64) is reader


def test_an_entry_expires_after_the_ttl() -> None:
    clock = Clock()
    cache = KeyCache(ttl_s=30, clock=clock)
    cache.remember("a" * 64, _principal("reader"))
    clock.now = START + 30
    assert cache.get("a" * 64) is None


def test_a_key_is_forgotten_when_it_stops_being_valid_not_at_the_ttl() -> None:
    clock = Clock()
    cache = KeyCache(ttl_s=60, clock=clock)
    cache.remember("a" * 64, _principal("expiring", valid_for_s=10))
    cache.remember("b" * 64, _principal("lasting", valid_for_s=600))
    clock.now = START + 9.999
    assert cache.get("a" * 64) is not None
    clock.now = START + 10
    assert cache.get("a" * 64) is None
    assert cache.get("b" * 64) is not None  # the TTL, nearer than its own end, applies


def test_a_key_with_no_time_left_is_not_remembered() -> None:
    cache = KeyCache(ttl_s=60, clock=Clock())
    cache.remember("a" * 64, _principal("ending", valid_for_s=0))
    assert cache.get("a" * 64) is None


def test_each_key_is_queued_for_a_use_write_at_most_once_a_minute() -> None:
    clock = Clock()
    cache = KeyCache(ttl_s=300, clock=clock)
    busy, quiet = _principal("busy"), _principal("quiet")
    cache.remember("a" * 64, busy)
    cache.remember("b" * 64, quiet)
    for _ in range(100):
        assert cache.get("a" * 64) is busy
    assert cache.take_uses() == {busy.key_id, quiet.key_id}
    clock.now = START + 59.999
    assert cache.get("a" * 64) is busy
    assert cache.take_uses() == set()
    clock.now = START + 60
    assert cache.get("a" * 64) is busy
    assert cache.take_uses() == {busy.key_id}


def test_uses_are_queued_with_the_cache_off_too() -> None:
    cache = KeyCache(ttl_s=0, clock=Clock())
    principal = _principal("uncached")
    for _ in range(5):
        cache.remember("a" * 64, principal)
    assert cache.take_uses() == {principal.key_id}


def test_a_zero_ttl_remembers_nothing() -> None:
    cache = KeyCache(ttl_s=0, clock=Clock())
    cache.remember("a" * 64, _principal("reader"))
    assert cache.get("a" * 64) is None


def test_the_cache_is_bounded_and_drops_the_oldest_entry() -> None:
    cache = KeyCache(ttl_s=60, max_entries=3, clock=Clock())
    for name in "abcd":
        cache.remember(name * 64, _principal(name))
    assert cache.get("a" * 64) is None
    assert [cache.get(n * 64).name for n in "bcd"] == ["b", "c", "d"]  # type: ignore[union-attr]


@asynccontextmanager
async def _served(settings: Settings, ttl_s: float) -> AsyncIterator[tuple[Starlette, Any]]:
    app = create_app(settings.model_copy(update={"auth_cache_s": ttl_s}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def _key_lookups(statements: list[str]) -> int:
    return sum("FROM api_keys" in statement for statement in statements)


async def _status(client: httpx.AsyncClient, key: str) -> int:
    return (await client.post("/graphql", json=QUERY, headers={"x-api-key": key})).status_code


async def test_a_busy_key_is_looked_up_once(settings: Settings, clean_db: None) -> None:
    async with _served(settings, ttl_s=60) as (app, client):
        key = await _make_key(app, "busy", frozenset({Scope.READ}))
        with recording(app.state.engine) as statements:
            assert [await _status(client, key) for _ in range(5)] == [200] * 5
        assert _key_lookups(statements) == 1


async def test_a_wrong_key_is_looked_up_every_time(settings: Settings, clean_db: None) -> None:
    """Only keys that verified are remembered: a refusal is never served from memory."""
    async with _served(settings, ttl_s=60) as (app, client):
        key = await _make_key(app, "real", frozenset({Scope.READ}))
        with recording(app.state.engine) as statements:
            assert [await _status(client, key + "x") for _ in range(3)] == [401] * 3
        assert _key_lookups(statements) == 3


async def test_a_revoked_key_is_refused_once_the_cache_time_has_passed(
    settings: Settings, clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ttl_s = 30
    clock = Clock()
    # The application still builds its cache from settings.auth_cache_s; only the clock is ours.
    monkeypatch.setattr(asgi, "KeyCache", functools.partial(KeyCache, clock=clock))
    async with _served(settings, ttl_s=ttl_s) as (app, client):
        key = await _make_key(app, "leaving", frozenset({Scope.READ}))
        assert await _status(client, key) == 200
        # The fallback is for a revocation the process did not hear (its LISTEN connection was
        # down): stop listening, so the notification cannot drop the key first.
        await app.state.notifications.close()
        async with app.state.sessionmaker.begin() as session:
            await revoke_api_key(session, "leaving")
        verified_at = clock.now
        clock.now = verified_at + ttl_s - 0.001
        assert await _status(client, key) == 200  # served from the cache until its time is up
        clock.now = verified_at + ttl_s
        assert await _status(client, key) == 401


async def test_without_the_cache_a_revocation_applies_at_once(
    settings: Settings, clean_db: None
) -> None:
    async with _served(settings, ttl_s=0) as (app, client):
        key = await _make_key(app, "leaving", frozenset({Scope.READ}))
        assert await _status(client, key) == 200
        async with app.state.sessionmaker.begin() as session:
            await revoke_api_key(session, "leaving")
        assert await _status(client, key) == 401
