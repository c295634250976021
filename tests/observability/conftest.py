"""The log and metrics tests run an application in production mode (JSON logs) with every
webhook secret set, in-process or behind a real uvicorn (tests/live_server.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette

from app.settings import Environment, Settings
from app.web.asgi import create_app
from tests.live_server import serving
from tests.webhooks.conftest import webhook_settings


@pytest.fixture
def production_settings(settings: Settings) -> Settings:
    return webhook_settings(settings).model_copy(update={"environment": Environment.PRODUCTION})


@pytest.fixture
async def app(production_settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    """Overrides the root ``app``: production mode, webhook secrets set."""
    application = create_app(production_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def served(
    app: Starlette, production_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The base URL of uvicorn serving ``app`` on a real socket."""
    async with serving(app, production_settings, monkeypatch) as base_url:
        yield base_url


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of the captured output, parsed: production logs are one JSON object a line."""
    lines = [line for line in output.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]
