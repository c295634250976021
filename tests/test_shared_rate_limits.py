"""The rate limits hold for the whole service: a store every process shares, on the database's
clock (or in Redis), with each process's own buckets standing in while the store fails.

The bounds are the token bucket's promise: over ``t`` seconds a bucket of ``L`` a minute
yields ``L`` tokens at once plus ``L / 60`` a second, so what was admitted is compared with
``L`` (±10%) plus the refill of the measured elapsed time, never with a time itself.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import create_sessionmaker
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.security.rate_limit import RateLimiter
from app.security.shared_limits import PostgresStore, RedisStore, SharedBuckets, StoreHealth
from app.settings import ConfigError, RateLimitStore, Settings, load_settings
from testkit.servers import Served, free_port, several

QUERY = {"query": "{ __typename }"}
REDIS_URL = "redis://127.0.0.1:6379/0"


def refill(per_minute: int, elapsed_s: float) -> int:
    """The most tokens a bucket can gain in ``elapsed_s``."""
    return math.ceil(per_minute * elapsed_s / 60)


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url() -> str:
    if not redis_reachable():
        pytest.skip("no Redis answers on 127.0.0.1:6379 (CI and the dev box run one)")
    return REDIS_URL


# --- the shared bucket's arithmetic, on the database's clock ----------------------------------


@pytest.fixture
async def stores(settings: Settings, clean_db: None) -> AsyncIterator[list[PostgresStore]]:
    """Four stores: four connections, as four processes would hold."""
    opened = [PostgresStore(settings) for _ in range(4)]
    yield opened
    for store in opened:
        await store.close()


async def age(engine: AsyncEngine, bucket: str, seconds: float) -> None:
    """``seconds`` pass for ``bucket`` on the database's clock."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE rate_limit_buckets SET updated = updated - make_interval(secs => :s)"
                " WHERE bucket = :b"
            ),
            {"s": seconds, "b": bucket},
        )


async def test_concurrent_draws_never_hand_out_more_than_the_bucket_holds(
    stores: list[PostgresStore],
) -> None:
    """Four connections draw blocks of 7 from one bucket of 60 a minute, all at once and far
    more than it holds: together they get the 60 it holds, plus at most its refill."""
    per_minute, block, rounds = 60, 7, 12

    async def drain(store: PostgresStore) -> int:
        got = 0
        for _ in range(rounds):
            got += (await store.draw("test:concurrent", per_minute, block)).granted
        return got

    started = time.monotonic()
    granted = await asyncio.gather(*(drain(store) for store in stores))
    elapsed = time.monotonic() - started
    assert per_minute <= sum(granted) <= per_minute + refill(per_minute, elapsed)


async def test_a_bucket_refills_on_the_database_clock_up_to_its_capacity(
    stores: list[PostgresStore], engine: AsyncEngine
) -> None:
    store = stores[0]
    first = await store.draw("test:refill", 60, 1_000)
    assert first.granted == 60
    empty = await store.draw("test:refill", 60, 1)
    assert empty.granted == 0
    assert 0 < empty.retry_after_s <= 1.0  # one token a second at 60 a minute
    await age(engine, "test:refill", 30)
    assert (await store.draw("test:refill", 60, 1_000)).granted == 30
    await age(engine, "test:refill", 3_600)
    assert (await store.draw("test:refill", 60, 1_000)).granted == 60


async def test_buckets_idle_for_a_minute_are_pruned(
    stores: list[PostgresStore], engine: AsyncEngine
) -> None:
    store = stores[0]
    for n in range(5):
        await store.draw(f"test:prune{n}", 60, 1)
    await age(engine, "test:prune0", 61)
    await age(engine, "test:prune1", 61)
    await store.prune()
    async with engine.connect() as connection:
        left = await connection.scalars(
            text("SELECT bucket FROM rate_limit_buckets WHERE bucket LIKE 'test:prune%'")
        )
        assert sorted(left) == ["test:prune2", "test:prune3", "test:prune4"]


async def test_redis_draws_blocks_then_what_is_left_then_nothing(redis_url: str) -> None:
    store = RedisStore(redis_url)
    bucket = f"test:{uuid.uuid4().hex}"
    try:
        draws = [await store.draw(bucket, 20, 7) for _ in range(4)]
    finally:
        await store.close()
    assert [drawn.granted for drawn in draws] == [7, 7, 6, 0]
    assert 0 < draws[-1].retry_after_s <= 60  # the oldest hit leaves the minute's window


async def test_processes_taking_at_once_admit_the_limit_within_their_blocks(
    settings: Settings, clean_db: None
) -> None:
    """Three limiters (three processes' worth) with blocks of 10%, 40 requests each at once
    for one key limited to 30 a minute: the 30, give or take the tokens drawn and not spent
    (at most 3 x (block - 1)), plus the refill."""
    per_minute = 30
    shared = settings.model_copy(
        update={
            "rate_limit_store": RateLimitStore.POSTGRES,
            "rate_limit_per_minute": per_minute,
            "rate_limit_block_percent": 10,
        }
    )
    limiters = [RateLimiter(shared) for _ in range(3)]
    started = time.monotonic()
    try:
        decisions = await asyncio.gather(
            *(limiter.requests.take("busy") for limiter in limiters for _ in range(40))
        )
    finally:
        for limiter in limiters:
            await limiter.close()
    elapsed = time.monotonic() - started
    admitted = sum(decision.allowed for decision in decisions)
    stranded = 3 * (3 - 1)
    assert per_minute - stranded <= admitted <= per_minute + refill(per_minute, elapsed)
    assert all(d.retry_after_s > 0 for d in decisions if not d.allowed)


class FakeClock:
    """This process's clock, which only decides when a lease has been idle long enough."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_process_forgets_idle_buckets_and_keeps_at_most_its_bound(
    settings: Settings, clean_db: None
) -> None:
    clock = FakeClock()
    store = PostgresStore(settings)
    try:
        buckets = SharedBuckets(
            "test", 600, StoreHealth(store, clock), block_percent=1, clock=clock, max_buckets=20
        )
        for n in range(50):
            assert (await buckets.take(f"caller{n}")).allowed
        assert len(buckets) == 20
        clock.now += 60
        assert (await buckets.take("fresh")).allowed
        assert len(buckets) == 1
    finally:
        await store.close()


# --- a store that fails -----------------------------------------------------------------------


def errors_counted(store: str) -> float:
    value = REGISTRY.get_sample_value("campaign_rate_limit_store_errors_total", {"store": store})
    return value or 0.0


@pytest.mark.parametrize("backend", [RateLimitStore.POSTGRES, RateLimitStore.REDIS])
async def test_a_store_that_is_down_leaves_the_limit_to_this_process(
    settings: Settings, backend: RateLimitStore
) -> None:
    """Nothing listens where the store should be: the process's own bucket decides (the Nth
    request passes, the next is refused, not every request nor none), and it is counted."""
    port = free_port()
    down = settings.model_copy(
        update={
            "rate_limit_store": backend,
            "rate_limit_per_minute": 5,
            "database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing",
            "redis_url": SecretStr(f"redis://127.0.0.1:{port}/0"),
        }
    )
    limiter = RateLimiter(down)
    before = errors_counted(backend.value)
    try:
        decisions = [(await limiter.requests.take("key")).allowed for _ in range(7)]
    finally:
        await limiter.close()
    assert decisions == [True] * 5 + [False] * 2
    assert errors_counted(backend.value) == before + 1  # then the store rests for a second


# --- two server processes, one client going from one to the other -----------------------------


LIMITS = {"requests": 60, "webhooks": 200, "auth": 20}


@pytest.fixture(params=["postgres", "redis"])
def two_servers(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, clean_db: None
) -> Iterator[tuple[list[Served], str]]:
    """Two ``serve`` processes over one database, sharing the default store (PostgreSQL, with
    its default block of 1%: 2 tokens for the webhooks' 200 a minute) or Redis."""
    store = {}
    if request.param == "redis":
        store["CAMPAIGN_REDIS_URL"] = request.getfixturevalue("redis_url")
    with several(
        database_url,
        tmp_path,
        2,
        CAMPAIGN_RATE_LIMIT_PER_MINUTE=str(LIMITS["requests"]),
        CAMPAIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE=str(LIMITS["webhooks"]),
        CAMPAIGN_AUTH_FAILURES_PER_MINUTE=str(LIMITS["auth"]),
        # Each run limits a made-up client address of its own (Redis outlives the database).
        CAMPAIGN_FORWARDED_ALLOW_IPS="127.0.0.1",
        **store,
    ) as servers:
        yield servers, request.param


def alternating(
    servers: list[Served], count: int, wait_at_most: int, **request: Any
) -> tuple[list[int], float]:
    """``count`` requests, one to each server in turn: their statuses, and the time taken;
    each 429 says to wait at least a second and at most ``wait_at_most``."""
    clients = [httpx.Client(base_url=server.base, timeout=10) for server in servers]
    started = time.monotonic()
    try:
        statuses = []
        for n in range(count):
            response = clients[n % len(clients)].post(**request)
            if response.status_code == 429:
                assert response.json()["error"] == "RATE_LIMITED"
                assert 1 <= int(response.headers["retry-after"]) <= wait_at_most
            statuses.append(response.status_code)
        return statuses, time.monotonic() - started
    finally:
        for client in clients:
            client.close()


def assert_limited_as_one(
    statuses: list[int], passed: int, per_minute: int, elapsed: float
) -> None:
    admitted = statuses.count(passed)
    assert set(statuses) == {passed, 429}, statuses
    assert 0.9 * per_minute <= admitted <= 1.1 * per_minute + refill(per_minute, elapsed), (
        admitted,
        elapsed,
    )


async def new_key(engine: AsyncEngine, scopes: frozenset[Scope]) -> str:
    async with create_sessionmaker(engine).begin() as session:
        return await create_api_key(session, f"limits-{uuid.uuid4().hex[:8]}", scopes)


def check_all_three_limits(
    servers: list[Served], key: str, webhook_key: str, moving_window: bool
) -> None:
    """Fresh keys and a fresh address: buckets of their own, in a store that outlives tests.
    A token bucket's 429 waits for one token; a moving window's, for its oldest hit to leave."""

    def wait_at_most(per_minute: int) -> int:
        return 60 if moving_window else math.ceil(60 / per_minute)

    address = {"x-forwarded-for": f"2001:db8::{uuid.uuid4().hex[:4]}"}
    webhook = {"enrollment_id": "unknown", "event_type": "sent"}
    checks = [
        ("requests", "/graphql", QUERY, {"authorization": f"Bearer {key}"}, 200),
        ("webhooks", "/webhooks/events", webhook, {"x-api-key": webhook_key}, 200),
        ("auth", "/graphql", QUERY, {"authorization": "Bearer cak_wrong"}, 401),
    ]
    for limit, url, body, credential, admitted in checks:
        per_minute = LIMITS[limit]
        statuses, elapsed = alternating(
            servers,
            per_minute * 5 // 4,
            wait_at_most(per_minute),
            url=url,
            json=body,
            headers=credential | address,
        )
        assert_limited_as_one(statuses, admitted, per_minute, elapsed)


@pytest.mark.slow
async def test_a_client_alternating_between_two_servers_is_limited_as_one(
    two_servers: tuple[list[Served], str], engine: AsyncEngine
) -> None:
    """Per API key, per webhook credential and per failing address: 1.25 times each limit,
    to one server then the other; each process on its own would admit them all."""
    key = await new_key(engine, frozenset({Scope.READ}))
    webhook_key = await new_key(engine, frozenset({Scope.WEBHOOKS}))
    servers, store = two_servers
    await asyncio.to_thread(check_all_three_limits, servers, key, webhook_key, store == "redis")


def test_the_store_is_redis_when_a_url_is_given_and_redis_needs_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CAMPAIGN_REDIS_URL", raising=False)
    monkeypatch.delenv("CAMPAIGN_RATE_LIMIT_STORE", raising=False)
    assert load_settings().rate_limit_backend is RateLimitStore.POSTGRES
    monkeypatch.setenv("CAMPAIGN_REDIS_URL", REDIS_URL)
    assert load_settings().rate_limit_backend is RateLimitStore.REDIS
    monkeypatch.setenv("CAMPAIGN_RATE_LIMIT_STORE", "memory")
    assert load_settings().rate_limit_backend is RateLimitStore.MEMORY
    monkeypatch.delenv("CAMPAIGN_REDIS_URL")
    monkeypatch.setenv("CAMPAIGN_RATE_LIMIT_STORE", "redis")
    with pytest.raises(
        ConfigError, match="CAMPAIGN_RATE_LIMIT_STORE=redis needs CAMPAIGN_REDIS_URL"
    ):
        load_settings()
