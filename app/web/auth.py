"""Reading the API key from a request and resolving it to a principal."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from app.security.api_keys import Principal, authenticate, hash_key, looks_like_key
from app.security.key_cache import KeyCache


def presented_key(request: HTTPConnection) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key``; an empty value counts as none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


async def principal_for(request: HTTPConnection) -> Principal | None:
    """The caller's principal: from the key cache when it verified moments ago, else looked up."""
    key = presented_key(request)
    if key is None or not looks_like_key(key):
        return None
    cache: KeyCache = request.app.state.key_cache
    key_hash = hash_key(key)
    principal = cache.get(key_hash)
    if principal is not None:
        return principal
    async with request.app.state.engine.begin() as connection:
        principal = await authenticate(connection, key)
    if principal is not None:
        cache.remember(key_hash, principal)
    return principal
