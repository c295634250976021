"""uvicorn on a free port, configured exactly as ``campaign-api serve`` configures it (the keyword
arguments are captured from ``app.cli.serve._serve``), serving an application whose lifespan already
runs (the test's ``app`` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette

from app.cli import serve as cli
from app.settings import Settings


def serve_options(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> dict[str, Any]:
    captured: dict[str, Any] = {}
    with monkeypatch.context() as patch:
        patch.setattr(uvicorn, "run", lambda target, **kwargs: captured.update(kwargs))
        cli._serve(settings, "127.0.0.1", 8000, 1, False)
    assert captured, "campaign-api serve runs uvicorn"
    for name in ("factory", "host", "port", "workers", "reload"):
        captured.pop(name, None)
    return captured


@asynccontextmanager
async def serving(
    app: Starlette, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """Yield the base URL of uvicorn serving ``app`` on a real socket."""
    async with serving_with(app, settings, monkeypatch) as (base, _):
        yield base


@asynccontextmanager
async def serving_with(
    app: Starlette, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """``serving``, also yielding the server, to look at its connections."""
    options = serve_options(monkeypatch, settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task
