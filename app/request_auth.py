"""Reading the API key from a request and resolving it to a principal."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from app.auth import Principal, authenticate


def presented_key(request: HTTPConnection) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key``; an empty value counts as none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


async def principal_for(request: HTTPConnection, engine: AsyncEngine) -> Principal | None:
    key = presented_key(request)
    if key is None:
        return None
    async with engine.begin() as connection:
        return await authenticate(connection, key)
