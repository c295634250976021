"""A real server for the log and metrics tests: uvicorn on a free port, configured exactly as
``campaign-api serve`` configures it (the keyword arguments are captured from ``app.cli._serve``),
serving an application in production mode (JSON logs) with every webhook secret set."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette

from app import cli
from app.main import create_app
from app.settings import Environment, Settings
from tests.webhooks.conftest import webhook_settings


def serve_options(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> dict[str, Any]:
    captured: dict[str, Any] = {}
    with monkeypatch.context() as patch:
        patch.setattr(uvicorn, "run", lambda target, **kwargs: captured.update(kwargs))
        cli._serve(settings, "127.0.0.1", 8000, 1, False)
    assert captured, "campaign-api serve runs uvicorn"
    for name in ("factory", "host", "port", "workers", "reload"):
        captured.pop(name, None)
    return captured


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
    options = serve_options(monkeypatch, production_settings)
    # The application's lifespan already ran (the ``app`` fixture); uvicorn must not rerun it.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of the captured output, parsed: production logs are one JSON object a line."""
    lines = [line for line in output.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]
