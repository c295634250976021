"""POSTs to the webhook paths skip Starlette's layers; every other request takes the full stack."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.web.fast_lane import FastLane


class Recorder:
    """An ASGI app that notes who reached it, and with which route."""

    def __init__(self, name: str, seen: list[tuple[str, Any]], inner: ASGIApp | None = None):
        self.name, self.seen, self.inner = name, seen, inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append((self.name, scope.get("route")))
        if self.inner is not None:
            await self.inner(scope, receive, send)


async def _nothing() -> dict[str, Any]:
    return {"type": "http.disconnect"}


async def _ignore(message: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("scope", "lane"),
    [
        ({"type": "http", "method": "POST", "path": "/hook"}, True),
        ({"type": "http", "method": "GET", "path": "/hook"}, False),
        ({"type": "http", "method": "POST", "path": "/hook/"}, False),
        ({"type": "http", "method": "POST", "path": "/other"}, False),
        ({"type": "http", "method": "POST", "path": "/api/hook", "root_path": "/api"}, False),
        ({"type": "websocket", "path": "/hook"}, False),
        ({"type": "lifespan"}, False),
    ],
)
async def test_only_a_post_to_a_lane_path_skips_the_full_stack(
    scope: dict[str, Any], lane: bool
) -> None:
    seen: list[tuple[str, Any]] = []
    hook = Route("/hook", Recorder("hook", seen), methods=["POST"])
    ignored = Route("/hook-get", Recorder("hook-get", seen), methods=["GET"])
    fast = FastLane(
        Recorder("full stack", seen),
        [hook, ignored],
        envelope=lambda app: Recorder("envelope", seen, app),
    )
    await fast(scope, _nothing, _ignore)
    if lane:
        assert seen == [("envelope", hook), ("hook", hook)]
    else:
        assert seen == [("full stack", None)]


async def test_other_methods_on_a_webhook_path_still_reach_the_router(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/webhooks/events")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
