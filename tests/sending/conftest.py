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

from app.cli.worker import options_from
from app.db.engine import create_engine, create_sessionmaker
from app.domain.enums import LinkedInAction, TemplateType
from app.models import EmailStep, LinkedInStep
from app.observability.sql_observer import instrument_engine
from app.providers.clients import build_clients
from app.providers.http import create_client
from app.services import enrollment, lifecycle, templates
from app.services.enrollment import ContactInput
from app.settings import Settings
from app.web.asgi import create_app
from app.worker.sender import SenderLoop, SenderOptions
from tests.sending.fake_providers import (
    LEMLIST_KEY,
    PHANTOMBUSTER_KEY,
    POSTMARK_TOKEN,
    FakeProviders,
)
from tests.webhooks.conftest import webhook_settings

AGENTS = {
    "profile_visit": "agent-visit",
    "connection_request": "agent-connect",
    "message": "agent-message",
    "voice_message": "agent-voice",
}
SENDING_CONFIG: dict[str, Any] = {
    "from_email": "team@example.com",
    "from_name": "The Team",
    "phantombuster_agents": AGENTS,
}


@pytest.fixture
async def providers() -> AsyncIterator[FakeProviders]:
    fake = FakeProviders()
    fake.base_url = await fake.start()  # type: ignore[attr-defined]
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
    return sending_settings(settings, providers.base_url)  # type: ignore[attr-defined]


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
    engine = create_engine(settings.model_copy(update={"pool_size": 4, "max_overflow": 0}))
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


@dataclass(frozen=True, slots=True)
class Campaign:
    template_id: str
    instance_id: str
    enrollment_ids: list[str]


def contact(n: int, **extra: Any) -> ContactInput:
    return ContactInput(
        contact_id=f"crm-{n}",
        metadata={
            "email": f"person{n}@example.com",
            "linkedin_url": f"https://www.linkedin.com/in/person-{n}",
            "first_name": f"Ada{n}",
            "company": f"Company {n}",
        }
        | extra,
    )


def email_steps_of(count: int) -> list[dict[str, Any]]:
    return [
        {
            "step_number": n,
            "subject": f"Step {n} for {{{{first_name}}}}",
            "body": f"Hello {{{{first_name}}}} at {{{{company|your company}}}}, step {n}.",
            "delay_hours": 0,
        }
        for n in range(1, count + 1)
    ]


def email_only(steps: int) -> dict[str, Any]:
    """``build_campaign`` arguments: an e-mail template of ``steps`` steps, no delays."""
    return {"template_type": "email", "email_steps": email_steps_of(steps)}


def linkedin_only(action: str = "connection_request") -> dict[str, Any]:
    """``build_campaign`` arguments: a LinkedIn template of one step."""
    return {
        "template_type": "linkedin",
        "linkedin_steps": [
            {"step_number": 1, "action": action, "message": "Hi {{first_name}}", "delay_hours": 0}
        ],
    }


async def build_campaign(
    sessionmaker: async_sessionmaker[AsyncSession],
    contacts: int,
    *,
    template_type: str = "multi_channel",
    email_steps: list[dict[str, Any]] | None = None,
    linkedin_steps: list[dict[str, Any]] | None = None,
    config: dict[str, Any] | None = None,
    start: bool = True,
) -> Campaign:
    """A template with steps, an instance of it, ``contacts`` enrollments; started."""
    if email_steps is None and template_type in ("email", "multi_channel"):
        email_steps = email_steps_of(3)
    if linkedin_steps is None and template_type in ("linkedin", "multi_channel"):
        linkedin_steps = [
            {"step_number": 1, "action": "profile_visit", "delay_hours": 0},
            {
                "step_number": 3,
                "action": "message",
                "message": "Hi {{first_name}}!",
                "delay_hours": 0,
            },
        ]
    async with sessionmaker.begin() as session:
        template_id = await templates.create_template(
            session, {"name": "Sender test", "type": TemplateType(template_type)}, "tests"
        )
    for step in email_steps or []:
        async with sessionmaker.begin() as session:
            await templates.add_step(session, EmailStep, str(template_id), step)
    for step in linkedin_steps or []:
        async with sessionmaker.begin() as session:
            await templates.add_step(
                session,
                LinkedInStep,
                str(template_id),
                step | {"action": LinkedInAction(step["action"])},
            )
    async with sessionmaker.begin() as session:
        instance_id = await lifecycle.create_instance(
            session,
            {
                "template_id": str(template_id),
                "name": "Sender run",
                "provider_config": config or SENDING_CONFIG,
            },
            "tests",
        )
    ids: list[str] = []
    for start_at in range(0, contacts, 10_000):
        batch = [contact(n) for n in range(start_at, min(contacts, start_at + 10_000))]
        async with sessionmaker.begin() as session:
            result = await enrollment.bulk_enroll(session, str(instance_id), batch)
        assert not result.skipped, result.skipped[:3]
        ids.extend(str(i) for i in result.enrolled_ids)
    if start:
        async with sessionmaker.begin() as session:
            await lifecycle.transition(session, str(instance_id), "start", "tests")
    return Campaign(str(template_id), str(instance_id), ids)


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


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
