"""Live updates against a real server on a real socket: the application (webhook secrets set,
small limits so the tests can reach them), its URL, keys and a campaign to watch."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from app.web.asgi import create_app
from tests.live_server import serving
from tests.webhooks.conftest import webhook_settings
from tests.webhooks.helpers import Campaign, Step, make_campaign

QUEUE_SIZE = 8
PER_KEY = 4
PER_CONNECTION = 3
BATCH = QUEUE_SIZE // 2
"""Items per instance and load: a burst never fills a queue by itself (only slowness does)."""


def live_settings(settings: Settings) -> Settings:
    return webhook_settings(settings).model_copy(
        update={
            "live_queue_size": QUEUE_SIZE,
            "live_subscriptions_per_key": PER_KEY,
            "live_subscriptions_per_connection": PER_CONNECTION,
            "live_batch_limit": BATCH,
        }
    )


@pytest.fixture
async def app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    application = create_app(live_settings(settings))
    async with application.router.lifespan_context(application):
        await application.state.notifications.listening.wait()
        yield application


@pytest.fixture
async def base(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    async with serving(app, app.state.settings, monkeypatch) as url:
        yield url


async def make_key(app: Starlette, name: str, *scopes: Scope) -> str:
    async with app.state.sessionmaker.begin() as session:
        return await create_api_key(session, name, frozenset(scopes))


@pytest.fixture
async def webhook_key(app: Starlette) -> str:
    return await make_key(app, "live-webhooks", Scope.WEBHOOKS)


@pytest.fixture
async def campaign(app: Starlette) -> Campaign:
    return await make_campaign(app.state.engine, [Step("email", 1, 0)], enrollments=3)
