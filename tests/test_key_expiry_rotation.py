"""Keys that expire and keys that are rotated, on the database's clock.

Over HTTP, a key is refused from its expiry on, and a rotated-out secret from the end of its
grace, with the same 401 as an unknown or revoked key, even while the process's key cache
(a minute here) would still serve it. No clock is faked: the intervals are a couple of seconds
and each test waits until PostgreSQL's ``now()`` has passed the moment in question.

The rules themselves (what a rotation keeps and changes, what cannot be rotated, what is
refused as input) run inside a rolled-back transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.applications import Starlette

from app.domain.enums import ErrorCode, Scope
from app.domain.errors import DomainError
from app.observability.sql_observer import recording
from app.security.api_keys import (
    authenticate,
    create_api_key,
    revoke_api_key,
    rotate_api_key,
)
from app.settings import Settings
from app.web.asgi import create_app

QUERY = {"query": "{ templates { totalCount } }"}
READ = frozenset({Scope.READ})
SHORT = timedelta(seconds=2)
CACHE_S = 60.0  # far longer than any interval here: the cache must not outlive a key
MARGIN_S = 0.05  # a lookup's own latency: the cache forgets a key at most this late


@asynccontextmanager
async def _served(settings: Settings, cache_s: float) -> AsyncIterator[tuple[Starlette, Any]]:
    app = create_app(settings.model_copy(update={"auth_cache_s": cache_s}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def _post(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/graphql", json=QUERY, headers={"x-api-key": key})


async def _wait_until_passed(engine: AsyncEngine, column: str, name: str) -> None:
    """Sleep until the database's clock is past ``column`` of key ``name``."""
    sql = text(f"SELECT extract(epoch FROM {column} - now())::float8 FROM api_keys WHERE name = :n")
    while True:
        async with engine.connect() as connection:
            left = (await connection.execute(sql, {"n": name})).scalar_one()
        if left < 0:
            break
        await asyncio.sleep(left + 0.01)
    await asyncio.sleep(MARGIN_S)


async def _key(app: Starlette, name: str, expires_in: timedelta | None = None) -> str:
    async with app.state.sessionmaker.begin() as session:
        return await create_api_key(session, name, READ, expires_in)


async def _refusal_of_a_revoked_key(app: Starlette, client: httpx.AsyncClient) -> Any:
    key = await _key(app, "revoked-for-comparison")
    async with app.state.sessionmaker.begin() as session:
        await revoke_api_key(session, "revoked-for-comparison")
    response = await _post(client, key)
    assert response.status_code == 401
    return response.json()


def _lookups(statements: list[str]) -> int:
    return sum("FROM api_keys" in statement for statement in statements)


# --- over HTTP, on the database's clock --------------------------------------------------


async def test_a_key_is_refused_from_its_expiry_even_when_cached(
    settings: Settings, clean_db: None
) -> None:
    async with _served(settings, CACHE_S) as (app, client):
        key = await _key(app, "short-lived", expires_in=SHORT)
        assert (await _post(client, key)).status_code == 200
        with recording(app.state.engine) as statements:
            assert (await _post(client, key)).status_code == 200
        assert _lookups(statements) == 0  # served from the cache

        await _wait_until_passed(app.state.engine, "expires_at", "short-lived")
        refused = await _post(client, key)
        assert refused.status_code == 401
        assert refused.json() == await _refusal_of_a_revoked_key(app, client)


async def test_an_expired_key_is_refused_like_a_revoked_one(
    settings: Settings, clean_db: None
) -> None:
    async with _served(settings, 0) as (app, client):
        key = await _key(app, "expired")
        async with app.state.engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE api_keys SET created_at = now() - interval '2 hours',"
                    " expires_at = now() - interval '1 second' WHERE name = 'expired'"
                )
            )
        refused = await _post(client, key)
        assert refused.status_code == 401
        assert refused.json() == await _refusal_of_a_revoked_key(app, client)


async def test_a_rotated_out_secret_works_until_its_grace_ends_then_is_refused(
    settings: Settings, clean_db: None
) -> None:
    async with _served(settings, CACHE_S) as (app, client):
        old = await _key(app, "rotating")
        async with app.state.sessionmaker.begin() as session:
            new = await rotate_api_key(session, "rotating", grace=SHORT)
        assert new != old
        assert (await _post(client, new)).status_code == 200
        assert (await _post(client, old)).status_code == 200  # within its grace
        with recording(app.state.engine) as statements:
            assert (await _post(client, old)).status_code == 200
        assert _lookups(statements) == 0  # the old secret, served from the cache

        await _wait_until_passed(app.state.engine, "previous_key_valid_until", "rotating")
        refused = await _post(client, old)
        assert refused.status_code == 401
        assert refused.json() == await _refusal_of_a_revoked_key(app, client)
        assert (await _post(client, new)).status_code == 200


async def test_a_rotation_without_grace_refuses_the_old_secret_at_once(
    settings: Settings, clean_db: None
) -> None:
    async with _served(settings, 0) as (app, client):
        old = await _key(app, "at-once")
        assert (await _post(client, old)).status_code == 200
        async with app.state.sessionmaker.begin() as session:
            new = await rotate_api_key(session, "at-once", grace=timedelta(0))
        assert (await _post(client, old)).status_code == 401
        assert (await _post(client, new)).status_code == 200


# --- the rules, in a rolled-back transaction -----------------------------------------------


async def _principal(session: AsyncSession, key: str) -> Any:
    return await authenticate(await session.connection(), key)


async def test_a_rotation_keeps_the_key_and_its_scopes(session: AsyncSession) -> None:
    old = await create_api_key(session, "keeper", frozenset({Scope.READ, Scope.WRITE}))
    before = await _principal(session, old)
    new = await rotate_api_key(session, "keeper")
    after = await _principal(session, new)
    assert (after.key_id, after.name, after.scopes) == (before.key_id, "keeper", before.scopes)
    # The default grace is a day: the old secret still verifies, as the same key.
    assert (await _principal(session, old)).key_id == before.key_id


async def test_a_second_rotation_ends_the_first_ones_grace_at_once(session: AsyncSession) -> None:
    first = await create_api_key(session, "twice", READ)
    second = await rotate_api_key(session, "twice")
    third = await rotate_api_key(session, "twice")
    assert await _principal(session, first) is None
    assert await _principal(session, second) is not None  # the previous one, in its grace
    assert await _principal(session, third) is not None


async def test_revoking_a_key_in_its_grace_refuses_both_secrets(session: AsyncSession) -> None:
    old = await create_api_key(session, "both", READ)
    new = await rotate_api_key(session, "both")
    await revoke_api_key(session, "both")
    assert await _principal(session, old) is None
    assert await _principal(session, new) is None


async def _expiry(session: AsyncSession, name: str) -> Any:
    sql = "SELECT expires_at - now() FROM api_keys WHERE name = :n"
    return (await session.execute(text(sql), {"n": name})).scalar_one()


async def test_expiry_is_counted_from_now_and_kept_or_replaced_by_a_rotation(
    session: AsyncSession,
) -> None:
    await create_api_key(session, "lease", READ, expires_in=timedelta(days=90))
    assert await _expiry(session, "lease") == timedelta(days=90)
    await rotate_api_key(session, "lease")
    assert await _expiry(session, "lease") == timedelta(days=90)
    await rotate_api_key(session, "lease", expires_in=timedelta(hours=12))
    assert await _expiry(session, "lease") == timedelta(hours=12)
    await create_api_key(session, "forever", READ)
    assert await _expiry(session, "forever") is None


async def test_a_key_that_expires_in_its_grace_refuses_the_old_secret_too(
    session: AsyncSession,
) -> None:
    old = await create_api_key(session, "ending", READ)
    await rotate_api_key(session, "ending", grace=timedelta(hours=1))
    principal = await _principal(session, old)
    assert principal.valid_for_s == pytest.approx(3600)
    await session.execute(
        text(
            "UPDATE api_keys SET created_at = now() - interval '2 hours',"
            " rotated_at = now() - interval '1 hour', expires_at = now() - interval '1 second'"
            " WHERE name = 'ending'"
        )
    )
    assert await _principal(session, old) is None


async def test_the_time_left_is_the_nearer_of_expiry_and_grace(session: AsyncSession) -> None:
    old = await create_api_key(session, "nearer", READ, expires_in=timedelta(minutes=30))
    new = await rotate_api_key(session, "nearer", grace=timedelta(hours=1))
    assert (await _principal(session, old)).valid_for_s == pytest.approx(1800)
    assert (await _principal(session, new)).valid_for_s == pytest.approx(1800)
    forever = await create_api_key(session, "no-end", READ)
    assert (await _principal(session, forever)).valid_for_s is None


async def _unchanged_after(session: AsyncSession, attempt: Any) -> DomainError:
    before = (await session.execute(text("SELECT * FROM api_keys ORDER BY name"))).all()
    with pytest.raises(DomainError) as raised:
        await attempt
    after = (await session.execute(text("SELECT * FROM api_keys ORDER BY name"))).all()
    assert after == before
    return raised.value


async def test_what_cannot_be_rotated(session: AsyncSession) -> None:
    await create_api_key(session, "revoked", READ)
    await revoke_api_key(session, "revoked")
    await create_api_key(session, "expired", READ)
    await session.execute(
        text(
            "UPDATE api_keys SET created_at = now() - interval '2 hours',"
            " expires_at = now() - interval '1 hour' WHERE name = 'expired'"
        )
    )
    for name in ("revoked", "expired", "nobody"):
        error = await _unchanged_after(session, rotate_api_key(session, name))
        assert (error.code, error.field) == (ErrorCode.NOT_FOUND, ("name",))
        assert repr(name) in error.message


@pytest.mark.parametrize(
    ("make", "field"),
    [
        pytest.param({"expires_in": timedelta(0)}, "expires_in", id="expires now"),
        pytest.param({"expires_in": timedelta(seconds=-1)}, "expires_in", id="expired already"),
        pytest.param({"expires_in": timedelta(days=3651)}, "expires_in", id="over ten years"),
    ],
)
async def test_an_unusable_expiry_is_refused(
    session: AsyncSession, make: dict[str, Any], field: str
) -> None:
    error = await _unchanged_after(session, create_api_key(session, "bad", READ, **make))
    assert (error.code, error.field) == (ErrorCode.INVALID, (field,))


@pytest.mark.parametrize(
    ("make", "field"),
    [
        pytest.param({"grace": timedelta(seconds=-1)}, "grace", id="negative grace"),
        pytest.param({"grace": timedelta(days=3651)}, "grace", id="grace over ten years"),
        pytest.param({"expires_in": timedelta(0)}, "expires_in", id="new expiry now"),
    ],
)
async def test_an_unusable_rotation_is_refused(
    session: AsyncSession, make: dict[str, Any], field: str
) -> None:
    await create_api_key(session, "target", READ)
    error = await _unchanged_after(session, rotate_api_key(session, "target", **make))
    assert (error.code, error.field) == (ErrorCode.INVALID, (field,))


async def test_ten_years_is_accepted(session: AsyncSession) -> None:
    await create_api_key(session, "decade", READ, expires_in=timedelta(days=3650))
    await rotate_api_key(session, "decade", grace=timedelta(days=3650))
    assert await _expiry(session, "decade") == timedelta(days=3650)
