"""Test database: a uniquely named database per run, on DATABASE_URL's server or an embedded one.

Service tests run inside a transaction that is rolled back; HTTP, GraphQL and concurrency
tests use a real pool and truncate what they wrote.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import TextClause, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.cli.seed import seed
from app.db import migrate
from app.db.embedded import start_embedded_postgres
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import Scope
from app.observability import metrics
from app.security.api_keys import create_api_key
from app.settings import Settings, normalize_database_url
from app.web.asgi import create_app
from tests.differential import DifferentialApp

ROOT = Path(__file__).resolve().parent.parent
TABLES = (
    "live_key_holds",
    "instance_activity",
    "reply_classifications",
    "contact_erasures",
    "hashed_suppressions",
    "dispatches",
    "send_quotas",
    "suppression_changes",
    "suppressions",
    "event_outcomes",
    "instance_counter_shards",
    "campaign_events",
    "enrollments",
    "instance_transitions",
    "campaign_instances",
    "email_steps",
    "linkedin_steps",
    "campaign_templates",
    "api_keys",
)


def _server_url() -> str:
    """The server tests run on: DATABASE_URL's, or an embedded one kept under .data/."""
    configured = os.environ.get("DATABASE_URL", "").strip()
    if configured:
        return normalize_database_url(configured)
    return start_embedded_postgres(ROOT / ".data" / "test-postgres")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, sql: str) -> None:
    admin_url = make_url(url).set(database="postgres")
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url.render_as_string(False)))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this run, migrated with Alembic, dropped at the end."""
    name = f"campaign_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _admin_now(url: str, sql: str) -> None:
    """``_admin`` from synchronous and asynchronous fixtures alike (its own loop, in a thread)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(url, sql)).result()


@pytest.fixture(scope="session")
def new_database(server_url: str) -> Iterator[Callable[[str], tuple[str, str]]]:
    """Makes an empty database of its own for a test: ``(name, URL)``, named after a prefix.

    They are all dropped when the run ends, not after each test: DROP DATABASE makes the whole
    server write a checkpoint, seconds each time after the suite's writes."""
    made: list[str] = []

    def make(prefix: str) -> tuple[str, str]:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        _admin_now(server_url, f'CREATE DATABASE "{name}"')
        made.append(name)
        return name, make_url(server_url).set(database=name).render_as_string(hide_password=False)

    yield make
    for name in made:
        _admin_now(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


UNLIMITED_RATE = 1_000_000
"""Requests per minute for the shared test app: the suite sends bursts from one address and
key; tests/test_rate_limits.py builds its own app to check the real limits at their boundary."""


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        environment="development",
        pool_size=5,
        rate_limit_per_minute=UNLIMITED_RATE,
        webhook_rate_limit_per_minute=UNLIMITED_RATE,
        auth_failures_per_minute=UNLIMITED_RATE,
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


def _emptying(tables: Sequence[str]) -> TextClause:
    names = ", ".join(f"'{table}'" for table in tables)
    return text(
        f"""
        DO $$
        DECLARE t regclass;
        BEGIN
          SET LOCAL session_replication_role = replica;
          FOR t IN
            WITH RECURSIVE reached(rel) AS (
              SELECT unnest(ARRAY[{names}]::regclass[])
              UNION
              SELECT c.conrelid FROM pg_constraint c JOIN reached r ON c.confrelid = r.rel
              WHERE c.contype = 'f'
            )
            SELECT rel FROM reached
          LOOP
            EXECUTE format('DELETE FROM %s', t);
          END LOOP;
          SET LOCAL session_replication_role = origin;
        END $$
        """
    )


async def empty_tables(connection: AsyncConnection, tables: Sequence[str] = TABLES) -> None:
    """Empty ``tables`` and every table that references them, as ``TRUNCATE … CASCADE`` would.

    With DELETE, because TRUNCATE makes new files for every table and index: 0.1-0.3 s each
    time on the CI machines, and some 900 tests empty the tables after them; deleting a test's
    few rows takes milliseconds. Triggers (append-only guards, the activity log) and foreign
    key checks stay out of it (the replica role, a superuser's, as the test user is), as they
    do for TRUNCATE; the role is restored for the rest of the transaction."""
    await connection.execute(_emptying(tables))


@pytest.fixture
async def clean_db(engine: AsyncEngine) -> AsyncIterator[None]:
    """For tests that commit through a real pool: empty every table afterwards."""
    yield
    async with engine.begin() as connection:
        await empty_tables(connection)


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def reference_app(settings: Settings) -> AsyncIterator[Starlette]:
    """The same service on Strawberry's standard executor: the fast path's reference."""
    application = create_app(settings.model_copy(update={"fast_execution": False}))
    async with application.router.lifespan_context(application):
        # Not part of what the process's metrics describe: its pool is nobody's concern.
        metrics.unwatch_pool(application.state.engine)
        yield application


@pytest.fixture
async def differential(app: Starlette, reference_app: Starlette) -> AsyncIterator[DifferentialApp]:
    """Every query a test sends also runs on the reference; any difference fails the test."""
    wrapper = DifferentialApp(app, reference_app)
    yield wrapper
    assert not wrapper.mismatches, wrapper.mismatches[0]


@pytest.fixture
async def client(differential: DifferentialApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=differential)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def direct_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose queries run once: for tests that count what the process did (metrics)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _make_key(app: Starlette, name: str, scopes: frozenset[Scope]) -> str:
    async with app.state.sessionmaker.begin() as session:
        return await create_api_key(session, name, scopes)


@pytest.fixture
async def admin_key(app: Starlette) -> str:
    return await _make_key(app, "test-admin", frozenset({Scope.ADMIN}))


@pytest.fixture
async def read_key(app: Starlette) -> str:
    return await _make_key(app, "test-reader", frozenset({Scope.READ}))


@pytest.fixture
async def write_key(app: Starlette) -> str:
    return await _make_key(app, "test-writer", frozenset({Scope.READ, Scope.WRITE}))


@pytest.fixture
async def seeded(app: Starlette) -> Starlette:
    """The demo data, seeded into the test database (read tests, examples, the browser)."""
    async with app.state.sessionmaker.begin() as session:
        assert await seed(session) is True
    return app
