"""Fixtures for erasure tests: the service with webhook secrets set (events arrive as providers
send them), keys for each scope, and committing sessions (tables emptied afterwards)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.db.engine import create_sessionmaker
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from app.web.asgi import create_app
from tests.webhooks.conftest import webhook_settings


@pytest.fixture
async def app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    """Overrides the root ``app``: the same application, with the webhook secrets set."""
    application = create_app(webhook_settings(settings))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def app_sessionmaker(engine: AsyncEngine, clean_db: None) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def webhook_key(app: Starlette) -> str:
    async with app.state.sessionmaker.begin() as session:
        return await create_api_key(session, "test-webhooks", frozenset({Scope.WEBHOOKS}))
