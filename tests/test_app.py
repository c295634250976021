"""The HTTP edge: probes, GraphiQL, and authentication on /graphql."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from app.security.api_keys import revoke_api_key

QUERY = {"query": "{ templates { totalCount } }"}
VENDOR = Path(__file__).resolve().parent.parent / "app" / "web" / "static" / "vendor"


async def test_healthz_answers_without_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_migrated_revision(client: httpx.AsyncClient) -> None:
    from app.db.migrate import head_revision

    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": head_revision()}


async def test_graphiql_page_is_served_with_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "unpkg.com" not in page.text
    asset = await client.get("/static/vendor/graphiql/graphiql.min.js")
    assert asset.status_code == 200
    assert asset.content == (VENDOR / "graphiql" / "graphiql.min.js").read_bytes()
    assert len(asset.content) > 100_000  # the real bundle, not a placeholder


async def test_post_without_a_key_is_401_with_instructions(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=QUERY)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "UNAUTHENTICATED"
    assert "Authorization: Bearer" in body["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_empty_bearer_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=QUERY, headers={"authorization": "Bearer "})
    assert response.status_code == 401


async def test_wrong_key_is_401(client: httpx.AsyncClient, read_key: str) -> None:
    response = await client.post(
        "/graphql", json=QUERY, headers={"authorization": f"Bearer {read_key}x"}
    )
    assert response.status_code == 401


async def test_bearer_and_x_api_key_both_authenticate(
    client: httpx.AsyncClient, read_key: str
) -> None:
    for headers in ({"authorization": f"Bearer {read_key}"}, {"x-api-key": read_key}):
        response = await client.post("/graphql", json=QUERY, headers=headers)
        assert response.status_code == 200
        assert response.json()["data"]["templates"]["totalCount"] == 0


async def test_revoked_key_is_401(app: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    async with app.state.sessionmaker.begin() as session:
        await revoke_api_key(session, "test-reader")
    response = await client.post("/graphql", json=QUERY, headers={"x-api-key": read_key})
    assert response.status_code == 401


async def test_key_without_scope_gets_forbidden_error(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    from app.domain.enums import Scope
    from app.security.api_keys import create_api_key

    async with app.state.sessionmaker.begin() as session:
        key = await create_api_key(session, "hooks-only", frozenset({Scope.WEBHOOKS}))
    response = await client.post("/graphql", json=QUERY, headers={"x-api-key": key})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_key_use_is_recorded(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    from sqlalchemy import text

    async def last_used_and_now() -> tuple[Any, Any]:
        async with app.state.engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT last_used_at, now() FROM api_keys WHERE name = 'test-reader'")
                )
            ).one()
        return row[0], row[1]

    never, before = await last_used_and_now()
    assert never is None
    response = await client.post("/graphql", json=QUERY, headers={"x-api-key": read_key})
    assert response.status_code == 200, response.text
    await app.state.key_use.flush()  # written off the request path (tests/test_key_use.py)
    used, after = await last_used_and_now()
    assert before <= used <= after


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.post("/graphql", json=QUERY)
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2
    assert all(len(i) == 32 for i in ids)


async def test_a_well_formed_caller_request_id_is_kept(client: httpx.AsyncClient) -> None:
    kept = await client.get("/healthz", headers={"x-request-id": "proxy-123.abc"})
    assert kept.headers["x-request-id"] == "proxy-123.abc"
    replaced = await client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32
