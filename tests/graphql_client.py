"""A small helper to POST GraphQL documents with an API key."""

from __future__ import annotations

from typing import Any

import httpx


async def gql(
    client: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
