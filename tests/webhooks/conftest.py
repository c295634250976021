"""Fixtures for the webhook shim: an application with every webhook secret configured (and a
small body limit), an API key with the ``webhooks`` scope, and extra applications on the same
database for the concurrency tests (each with its own pool and group-commit batcher, so their
transactions really run side by side)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from app.web.asgi import create_app
from tests.webhooks.helpers import (
    LEMLIST_SECRET,
    MAX_BYTES,
    PHANTOMBUSTER_SECRET,
    POSTMARK_PASSWORD,
    POSTMARK_USER,
)


def webhook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "lemlist_webhook_secret": SecretStr(LEMLIST_SECRET),
            "phantombuster_webhook_secret": SecretStr(PHANTOMBUSTER_SECRET),
            "postmark_webhook_user": POSTMARK_USER,
            "postmark_webhook_password": SecretStr(POSTMARK_PASSWORD),
            "webhook_max_bytes": MAX_BYTES,
        }
    )


@pytest.fixture
async def app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    """Overrides the root ``app``: the same application, with the webhook secrets set."""
    application = create_app(webhook_settings(settings))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def bare_client(settings: Settings, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    """An application with no webhook secret configured at all."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture
async def other_clients(
    settings: Settings, client: httpx.AsyncClient
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """``client`` plus two more applications on the same database."""
    async with AsyncExitStack() as stack:
        clients = [client]
        for _ in range(2):
            application = create_app(webhook_settings(settings))
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = httpx.ASGITransport(app=application)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver")
                )
            )
        yield clients


@pytest.fixture
async def webhook_key(app: Starlette) -> str:
    async with app.state.sessionmaker.begin() as session:
        return await create_api_key(session, "test-webhooks", frozenset({Scope.WEBHOOKS}))
