"""The acceptance test for a lost database: a server of the test's own is stopped in the middle
of a stream of GraphQL reads and webhook posts, then started again on the same port. And a
server that stops answering without closing its connections (frozen, as behind a partition).

While it is down every request answers 503 with Retry-After, quickly (a bound against hangs,
not a speed measurement); once it is back the same application instance answers 200 again
without a restart; and every webhook event that was acknowledged is stored exactly once, as is
every event refused with 503 once its provider sends it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from app.db import migrate
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from app.web.asgi import create_app
from app.web.unavailable import RETRY_AFTER_S
from tests.resilience.helpers import READ, assert_unavailable, lemlist_event
from tests.resilience.second_server import SecondServer, second_server
from tests.webhooks.conftest import webhook_settings
from tests.webhooks.helpers import Step, event, make_campaign, post_events, post_lemlist

POOL_TIMEOUT_S = 2.0
ANSWER_BOUND_S = POOL_TIMEOUT_S + 10  # generous: only a hang exceeds it
CLIENTS = 6
EACH = 3  # answers of every kind wanted in each phase


@pytest.fixture(scope="module")
def server() -> Iterator[SecondServer]:
    with second_server() as running:
        migrate.upgrade(running.url)
        yield running


@pytest.fixture
async def app(server: SecondServer, settings: Settings) -> AsyncIterator[Starlette]:
    own = webhook_settings(settings).model_copy(
        update={"database_url": server.url, "pool_timeout_s": POOL_TIMEOUT_S, "pool_size": 4}
    )
    application = create_app(own)
    async with application.router.lifespan_context(application):
        yield application


@dataclass(slots=True)
class Answer:
    kind: str
    sent_at: float
    status: int
    response: httpx.Response
    event_id: str | None
    body: Any


class Stream:
    """Clients sending a mix of reads and webhooks until told to stop; every answer kept."""

    def __init__(self, client: httpx.AsyncClient, key: str, enrollment_id: str) -> None:
        self.client, self.key, self.enrollment_id = client, key, enrollment_id
        self.answers: list[Answer] = []
        self.stopping = False

    async def _one(self, kind: str) -> Answer:
        auth = {"authorization": f"Bearer {self.key}"}
        event_id: str | None = None
        body: Any = None
        if kind == "graphql":
            call = self.client.post("/graphql", json={"query": READ}, headers=auth)
        elif kind == "api":
            body = event(self.enrollment_id, "opened", 1)
            event_id = body["provider_event_id"]
            call = post_events(self.client, self.key, body)
        else:
            body = lemlist_event(self.enrollment_id)
            event_id = body["_id"]
            call = post_lemlist(self.client, body)
        sent_at = time.monotonic()
        try:
            response = await asyncio.wait_for(call, ANSWER_BOUND_S)
        except TimeoutError:
            pytest.fail(f"a {kind} request did not answer within {ANSWER_BOUND_S} s")
        return Answer(kind, sent_at, response.status_code, response, event_id, body)

    async def _client(self, number: int) -> None:
        kinds = ("graphql", "api", "lemlist")
        turn = number
        while not self.stopping:
            self.answers.append(await self._one(kinds[turn % len(kinds)]))
            turn += 1
            await asyncio.sleep(0.01)

    async def until(self, enough: Callable[[], bool]) -> None:
        for _ in range(3000):
            if enough():
                return
            await asyncio.sleep(0.01)
        pytest.fail("the stream never reached the expected answers")

    def count(self, status: int, after: float) -> Callable[[], bool]:
        def enough() -> bool:
            for kind in ("graphql", "api", "lemlist"):
                seen = [a for a in self.answers if a.kind == kind and a.sent_at > after]
                if sum(a.status == status for a in seen) < EACH:
                    return False
            return True

        return enough

    def run(self) -> Awaitable[list[None]]:
        return asyncio.gather(*(self._client(n) for n in range(CLIENTS)))


async def _stored(app: Starlette) -> dict[str, int]:
    async with app.state.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT provider_event_id, count(*) FROM campaign_events GROUP BY 1")
        )
        return {row[0]: row[1] for row in rows}


@pytest.mark.slow
async def test_a_stopped_database_gives_503s_and_the_same_app_recovers_losing_nothing(
    app: Starlette, server: SecondServer
) -> None:
    async with app.state.sessionmaker.begin() as session:
        key = await create_api_key(session, "stream", frozenset({Scope.READ, Scope.WEBHOOKS}))
    campaign = await make_campaign(app.state.engine, (Step("email", 1, 0),))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        stream = Stream(client, key, campaign.enrollment_id)
        clients = asyncio.ensure_future(stream.run())
        try:
            await stream.until(stream.count(200, after=0))

            await asyncio.to_thread(server.stop, "immediate")
            stopped = time.monotonic()
            await stream.until(stream.count(503, after=stopped))
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.headers["retry-after"] == str(RETRY_AFTER_S)

            starting = time.monotonic()
            await asyncio.to_thread(server.start)
            started = time.monotonic()
            await stream.until(stream.count(200, after=started))
            assert (await client.get("/readyz")).status_code == 200
        finally:
            stream.stopping = True
            await clients

        answers = stream.answers
        assert {a.status for a in answers} <= {200, 503}, sorted({a.status for a in answers})
        for answer in answers:
            if answer.status == 503:
                assert_unavailable(answer.response)
            elif answer.kind == "graphql":
                assert "errors" not in answer.response.json(), answer.response.text
        down = [a for a in answers if stopped < a.sent_at < starting]
        assert down, "no request was sent while the server was down"
        assert {a.status for a in down} == {503}
        back = [a for a in answers if a.sent_at > started]
        assert {a.status for a in back} == {200}, [a.response.text for a in back][:3]

        posted = [a for a in answers if a.event_id is not None]
        acknowledged = {a.event_id for a in posted if a.status == 200}
        refused = [a for a in posted if a.status == 503]
        stored = await _stored(app)
        assert all(stored.get(event_id) == 1 for event_id in acknowledged)
        assert max(stored.values()) == 1  # nothing twice, whatever its answer was
        assert set(stored) <= {a.event_id for a in posted}

        # The providers retry what was refused: afterwards every event is stored exactly once.
        for answer in refused:
            if answer.kind == "api":
                retry = await post_events(client, key, answer.body)
            else:
                retry = await post_lemlist(client, answer.body)
            assert retry.status_code == 200, retry.text
        assert await _stored(app) == {a.event_id: 1 for a in posted}


@pytest.fixture
async def strict_app(server: SecondServer, settings: Settings) -> AsyncIterator[Starlette]:
    """Short timeouts: the driver gives up on a silent server after 2 + 1 s."""
    own = webhook_settings(settings).model_copy(
        update={
            "database_url": server.url,
            "pool_timeout_s": 1.0,
            "statement_timeout_ms": 2000,
            "pool_size": 4,
        }
    )
    application = create_app(own)
    async with application.router.lifespan_context(application):
        yield application


@pytest.mark.slow
async def test_a_server_that_stops_answering_gives_503s_not_hangs(
    strict_app: Starlette, server: SecondServer
) -> None:
    async with strict_app.state.sessionmaker.begin() as session:
        key = await create_api_key(session, "frozen", frozenset({Scope.READ, Scope.WEBHOOKS}))
    campaign = await make_campaign(strict_app.state.engine, (Step("email", 1, 0),))
    transport = httpx.ASGITransport(app=strict_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        stream = Stream(client, key, campaign.enrollment_id)

        async def one_of_each() -> list[Answer]:
            # Several at once, so that pooled (now silent) connections are reused too.
            kinds = ("graphql", "api", "lemlist") * 2
            return await asyncio.gather(*(stream._one(kind) for kind in kinds))

        assert {a.status for a in await one_of_each()} == {200}
        with server.frozen():
            during = await one_of_each()
            ready = await client.get("/readyz")
        for answer in during:
            assert_unavailable(answer.response)
        assert ready.status_code == 503
        after = await one_of_each()
        assert {a.status for a in after} == {200}, [a.response.text for a in after]
        stored = await _stored(strict_app)
        assert all(stored.get(a.event_id) == 1 for a in after if a.event_id)
