"""The sender's test bench: fake providers on loopback, settings pointing at them, campaigns
built through the services, and a sender running in this process (or as subprocesses)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.cli.worker import options_from, pool_size
from app.db.engine import create_engine, create_sessionmaker
from app.observability.sql_observer import instrument_engine
from app.providers.clients import build_clients
from app.providers.http import create_client
from app.services import enrollment
from app.settings import Settings
from app.web.asgi import create_app
from app.worker.sender import SenderLoop, SenderOptions
from testkit.campaigns import Campaign, build_campaign, contact
from testkit.fake_providers import (
    LEMLIST_KEY,
    PHANTOMBUSTER_KEY,
    POSTMARK_TOKEN,
    FakeProviders,
    Reply,
)
from tests.conftest import TABLES
from tests.webhooks.conftest import webhook_settings


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


@dataclass(frozen=True, slots=True)
class RunningSender:
    loop: SenderLoop
    engine: AsyncEngine
    """The sender's own engine, instrumented: ``recording(engine)`` sees its statements."""


@contextlib.asynccontextmanager
async def running_sender(
    settings: Settings, options: SenderOptions | None = None
) -> AsyncIterator[RunningSender]:
    """A sender in this process until the block ends (then stopped as SIGTERM stops it)."""
    engine = create_engine(
        settings.model_copy(
            update={"pool_size": pool_size(settings.send_concurrency), "max_overflow": 0}
        )
    )
    instrument_engine(engine, settings.slow_sql_ms)
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
        yield RunningSender(sender, engine)
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


async def all_sent(engine: AsyncEngine, instance_id: str, contacts: int, touches: int) -> bool:
    """Every enrollment of the instance completed and ``touches`` of its dispatches sent: an
    enrollment completes with the first touch of its last step, while the other channel's
    touch of that step may still be on its way."""
    done = await scalar(
        engine,
        "SELECT count(*) FROM enrollments WHERE instance_id = CAST(:i AS uuid)"
        " AND status = 'completed'",
        i=instance_id,
    )
    sent = await scalar(
        engine,
        "SELECT count(*) FROM dispatches WHERE instance_id = CAST(:i AS uuid) AND status = 'sent'",
        i=instance_id,
    )
    return bool(done == contacts and sent >= touches)


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


@pytest.fixture
async def clean_db(engine: AsyncEngine) -> AsyncIterator[None]:
    """The suite's clean_db with TRUNCATE, not DELETE (tests/conftest.py's empty_tables).

    After DELETE the sender's tables keep their dead rows and statistics until autovacuum
    comes, and the plans PostgreSQL then chose for the claim and the recording ran the
    4-sender test (10,000 touches) into the statement timeout, where it takes 30 s after a
    TRUNCATE. Noted for the sender itself: its statements' plans depend on that state."""
    yield
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))


@pytest.fixture
def app_sessionmaker(engine: AsyncEngine, clean_db: None) -> async_sessionmaker[AsyncSession]:
    """Sessions that commit (the sender must see the campaign); tables emptied afterwards."""
    return create_sessionmaker(engine)


@pytest.fixture
async def app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    """Overrides the root ``app``: the service with the webhook secrets set, on the database
    the senders use (GraphQL operations and provider webhooks during a run)."""
    application = create_app(webhook_settings(settings))
    async with application.router.lifespan_context(application):
        yield application


async def enroll(
    sessionmaker: async_sessionmaker[AsyncSession], instance_id: str, *numbers: int
) -> list[str]:
    """Enroll ``contact(n)`` for each number into an existing instance; their ids."""
    async with sessionmaker.begin() as session:
        result = await enrollment.bulk_enroll(session, instance_id, [contact(n) for n in numbers])
    assert not result.skipped, result.skipped
    return [str(i) for i in result.enrolled_ids]


# --- a run with every outcome ----------------------------------------------------------------

MIXED_CONTACTS = 6
REFUSED, RETRIED, LOST = 0, 1, 3  # contact numbers: 406 for good, 405 until given up, lost


@dataclass(frozen=True, slots=True)
class Run:
    campaign: Campaign
    enrollment_of: dict[int, str]  # contact number -> enrollment id


def mixed_script(provider: str, payload: dict[str, Any]) -> Reply:
    if provider == "postmark" and payload["To"] == f"person{REFUSED}@example.com":
        return Reply(422, {"ErrorCode": 406, "Message": "Inactive recipient"})
    if provider == "postmark" and payload["To"] == f"person{RETRIED}@example.com":
        return Reply(422, {"ErrorCode": 405, "Message": "Not allowed to send"})
    if provider == "phantombuster" and payload["argument"]["profileUrl"].endswith(f"-{LOST}"):
        return Reply.dropped()
    return Reply.taken()


async def settled(engine: AsyncEngine, instance_id: str) -> bool:
    """No touch held or waiting, no enrollment due: the sender has nothing left to do."""
    busy = await scalar(
        engine,
        "SELECT (SELECT count(*) FROM dispatches WHERE instance_id = CAST(:i AS uuid)"
        "        AND status IN ('queued', 'sending'))"
        " + (SELECT count(*) FROM enrollments WHERE instance_id = CAST(:i AS uuid)"
        "        AND status = 'active' AND next_action_at IS NOT NULL)",
        i=instance_id,
    )
    return bool(busy == 0)


@pytest.fixture
async def run(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    sender_settings: Settings,
) -> Run:
    """Email step 1 then a LinkedIn profile visit as step 2, for six contacts: one refused
    for good by Postmark, one refused until the sender gives up, one whose visit's answer is
    lost (PhantomBuster cannot be asked: unknown), three that complete."""
    providers.script = mixed_script
    campaign = await build_campaign(
        app_sessionmaker,
        MIXED_CONTACTS,
        email_steps=[
            {"step_number": 1, "subject": "Hi {{first_name}}", "body": "Hello {{first_name}}."}
        ],
        linkedin_steps=[{"step_number": 2, "action": "profile_visit", "delay_hours": 0}],
    )

    async def sender_is_done() -> bool:
        return await settled(engine, campaign.instance_id)

    async with running_sender(sender_settings):
        await eventually(sender_is_done)
    found = await rows(
        engine,
        "SELECT contact_id, id::text FROM enrollments WHERE instance_id = CAST(:i AS uuid)",
        i=campaign.instance_id,
    )
    return Run(campaign, {int(c.removeprefix("crm-")): i for c, i in found})


async def sending_figures(engine: AsyncEngine, instance_id: str) -> Any:
    """An instance's sending figures, counted here from the rows (UTC instance: no timezone
    in its provider_config)."""
    [figures] = await rows(
        engine,
        """
        SELECT
          (SELECT count(*) FROM enrollments WHERE instance_id = CAST(:i AS uuid)
             AND status = 'active' AND next_action_at <= now()) AS due_now,
          (SELECT min(next_action_at) FROM enrollments WHERE instance_id = CAST(:i AS uuid)
             AND status = 'active') AS next_due_at,
          count(*) FILTER (WHERE status = 'sending') AS in_flight,
          count(*) FILTER (WHERE status = 'queued') AS retrying,
          count(*) FILTER (WHERE status = 'failed') AS failed,
          count(*) FILTER (WHERE status = 'unknown') AS unknown,
          count(*) FILTER (WHERE status = 'sent'
                           AND (sent_at AT TIME ZONE 'UTC')::date
                               = (now() AT TIME ZONE 'UTC')::date) AS sent_today
        FROM dispatches WHERE instance_id = CAST(:i AS uuid)
        """,
        i=instance_id,
    )
    return figures
