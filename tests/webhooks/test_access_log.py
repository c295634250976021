"""The secret in a webhook URL must not reach the server's access log (webhooks.md: "a secret
that arrives in a query string is removed from every logged URL").

The application is served by uvicorn configured exactly as ``campaign-api serve`` configures it
(the keyword arguments are captured from ``app.cli._serve``), on a real socket."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app import cli
from app.settings import Settings
from tests.webhooks.helpers import (
    LEMLIST_SECRET,
    PHANTOMBUSTER_SECRET,
    Step,
    count_rows,
    load,
    make_campaign,
    with_enrollment,
)


def serve_options(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> dict[str, Any]:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kwargs: captured.update(kwargs))
    cli._serve(settings, "127.0.0.1", 8000, 1, False)
    assert captured, "campaign-api serve runs uvicorn"
    for name in ("factory", "host", "port", "workers", "reload"):
        captured.pop(name, None)
    return captured


@pytest.fixture
async def served(
    app: Starlette, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, list[logging.LogRecord]]]:
    options = serve_options(monkeypatch, app.state.settings)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    # The application's lifespan already ran (the ``app`` fixture); uvicorn must not rerun it.
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", **options)
    server = uvicorn.Server(config)
    keep = Keep(level=logging.DEBUG)
    for logger in loggers:
        logger.addHandler(keep)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", records
    finally:
        server.should_exit = True
        await task
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


async def test_query_string_secrets_are_not_in_the_access_log(
    served: tuple[str, list[logging.LogRecord]], engine: AsyncEngine
) -> None:
    base_url, records = served
    campaign = await make_campaign(engine, (Step("email", 1, 0),), template_type="email")
    lemlist = with_enrollment(load("lemlist", "emailsOpened"), "lemlist", campaign.enrollment_id)
    phantom = load("phantombuster", "message_sender_object")
    phantom["resultObject"]["enrollmentId"] = campaign.enrollment_id
    async with httpx.AsyncClient(base_url=base_url) as http:
        for secret in ("wrong-" + LEMLIST_SECRET[::-1], LEMLIST_SECRET):
            await http.post("/webhooks/lemlist", params={"secret": secret}, json=lemlist)
        response = await http.post(
            "/webhooks/phantombuster", params={"secret": PHANTOMBUSTER_SECRET}, json=phantom
        )
        assert response.status_code == 200, response.text
    assert await count_rows(engine, "campaign_events") == 2
    access = [r.getMessage() for r in records if r.name == "uvicorn.access"]
    assert any("/webhooks/lemlist" in m for m in access), "the access log is on"
    for message in access:
        for secret in (LEMLIST_SECRET, PHANTOMBUSTER_SECRET):
            assert secret not in message, message
