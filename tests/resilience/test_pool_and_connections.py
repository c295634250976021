"""An exhausted pool, a connection killed during a GraphQL query, connections killed while
idle: each gives a 503 with Retry-After (never a hang, never a masked 200) or, for idle
connections, nothing at all, and the same application serves the next request normally."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from app.web.asgi import create_app
from app.web.unavailable import RETRY_AFTER_S
from tests.locks import backend_pid, wait_for_lock_wait
from tests.resilience.helpers import READ, assert_unavailable, lemlist_event
from tests.webhooks.conftest import webhook_settings
from tests.webhooks.helpers import (
    Campaign,
    Step,
    count_rows,
    event,
    make_campaign,
    post_events,
    post_lemlist,
)


@pytest.fixture
async def app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    """One connection in the pool, and a short wait for it."""
    small = webhook_settings(settings).model_copy(
        update={"pool_size": 1, "max_overflow": 0, "pool_timeout_s": 0.5}
    )
    application = create_app(small)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def key(app: Starlette) -> str:
    async with app.state.sessionmaker.begin() as session:
        scopes = frozenset({Scope.READ, Scope.WEBHOOKS})
        return await create_api_key(session, "resilience", scopes)


@pytest.fixture
async def campaign(engine: AsyncEngine) -> Campaign:
    return await make_campaign(engine, (Step("email", 1, 0), Step("email", 2, 24)))


async def _read(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": READ}, headers={"authorization": f"Bearer {key}"}
    )


async def test_an_exhausted_pool_answers_503_then_serves_again(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, key: str, campaign: Campaign
) -> None:
    held = await app.state.engine.connect()  # the pool's only connection
    try:
        assert_unavailable(await _read(client, key))
        assert_unavailable(
            await post_events(client, key, [event(campaign.enrollment_id, "sent", 1)])
        )
        assert_unavailable(await post_lemlist(client, lemlist_event(campaign.enrollment_id)))
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["retry-after"] == str(RETRY_AFTER_S)
        assert (await client.get("/healthz")).status_code == 200
    finally:
        await held.close()
    assert await count_rows(engine, "campaign_events") == 0

    read = await _read(client, key)
    assert read.status_code == 200
    assert "errors" not in read.json(), read.text
    assert (await post_lemlist(client, lemlist_event(campaign.enrollment_id))).json()[
        "accepted"
    ] == 1
    assert (await client.get("/readyz")).status_code == 200
    assert await count_rows(engine, "campaign_events") == 1


async def test_a_connection_lost_during_graphql_execution_is_a_503_not_a_masked_200(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, key: str
) -> None:
    # The key is checked before execution; the read of the templates then waits on the lock,
    # and its backend is terminated while it waits.
    async with engine.connect() as locker:
        await locker.execute(text("LOCK TABLE campaign_templates IN ACCESS EXCLUSIVE MODE"))
        request = asyncio.create_task(_read(client, key))
        pid = await wait_for_lock_wait(engine, blocked_by=await backend_pid(locker))
        async with engine.connect() as killer:
            assert await killer.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        response = await request
        await locker.rollback()
    assert_unavailable(response)

    again = await _read(client, key)
    assert again.status_code == 200
    assert "errors" not in again.json(), again.text


async def test_connections_the_server_closed_while_idle_are_discarded(
    app: Starlette, client: httpx.AsyncClient, engine: AsyncEngine, key: str
) -> None:
    assert (await _read(client, key)).status_code == 200
    async with app.state.engine.connect() as pooled:  # the one idle connection of the pool
        stale_pid = await pooled.scalar(text("SELECT pg_backend_pid()"))
    async with engine.connect() as killer:
        assert await killer.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": stale_pid})

    response = await _read(client, key)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    async with app.state.engine.connect() as pooled:
        assert await pooled.scalar(text("SELECT pg_backend_pid()")) != stale_pid
