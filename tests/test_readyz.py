"""``/readyz`` on a database that answers but was never migrated: 503 naming the revision,
not "the database does not answer" (that one is for an unreachable database)."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.settings import Settings
from app.web.asgi import create_app


async def _admin(server_url: str, sql: str) -> None:
    dsn = make_url(server_url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
def empty_database(new_database: Callable[[str], tuple[str, str]]) -> str:
    return new_database("campaign_empty")[1]


async def test_readyz_on_a_database_never_migrated(settings: Settings, empty_database: str) -> None:
    app = create_app(settings.model_copy(update={"database_url": empty_database}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "no revision" in response.json()["reason"]
