"""A server started on a database never migrated (``serve`` refuses to, but ``uvicorn`` run by
hand does not, and a schema can be dropped under a running server) answers a typed 503 that
says what to do, not a 500: for GraphQL and for a webhook alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.settings import Settings
from app.web.asgi import create_app
from tests.webhooks.helpers import load, with_enrollment

NOT_MIGRATED = {
    "error": "DATABASE_NOT_MIGRATED",
    "message": "database is not migrated: run `campaign-api migrate`",
}
LEMLIST_SECRET = "unmigrated-secret"


@pytest.fixture
async def unmigrated(
    new_database: Callable[[str], tuple[str, str]], settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the application on a brand-new database nobody migrated."""
    _, url = new_database("campaign_unmigrated")
    app = create_app(
        settings.model_copy(
            update={"database_url": url, "lemlist_webhook_secret": SecretStr(LEMLIST_SECRET)}
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


def _assert_not_migrated(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == NOT_MIGRATED
    assert response.headers["retry-after"].isdigit()


async def test_graphql_says_the_database_is_not_migrated(unmigrated: httpx.AsyncClient) -> None:
    response = await unmigrated.post(
        "/graphql",
        json={"query": "{ templates { totalCount } }"},
        headers={"authorization": "Bearer cak_" + "x" * 43},
    )
    _assert_not_migrated(response)


async def test_a_webhook_says_the_database_is_not_migrated(unmigrated: httpx.AsyncClient) -> None:
    payload: dict[str, Any] = with_enrollment(
        load("lemlist", "emailsOpened"), "lemlist", str(uuid.uuid4())
    )
    response = await unmigrated.post(
        "/webhooks/lemlist", params={"secret": LEMLIST_SECRET}, json=payload
    )
    _assert_not_migrated(response)
