"""Reading the API key from a request and resolving it to a principal, or refusing the request."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from app.security.api_keys import Principal, authenticate, hash_key, looks_like_key
from app.security.key_cache import KeyCache
from app.web.errors import NO_KEY_MESSAGE, UNRECOGNISED_KEY_MESSAGE, Refused
from app.web.limits import failed_authentication

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="campaign-api"'}


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
    return await principal_for_key(request, key)


async def principal_for_key(request: HTTPConnection, key: str) -> Principal | None:
    """``key``'s principal, from the cache or looked up (a WebSocket's ``connection_init``
    carries its key in the payload, not in a header)."""
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


def unauthenticated(request: HTTPConnection) -> Refused:
    """401 saying whether a key was sent at all, and nothing of why a sent one failed (wrong,
    revoked or expired look alike: a guess learns nothing)."""
    sent = presented_key(request) is not None
    return Refused(
        401, "UNAUTHENTICATED", UNRECOGNISED_KEY_MESSAGE if sent else NO_KEY_MESSAGE, CHALLENGE
    )


async def require_principal(request: Request) -> Principal:
    """The caller's principal, or Refused: 401, or 429 once the address has failed too often."""
    principal = await principal_for(request)
    if principal is None:
        raise failed_authentication(request, unauthenticated(request))
    return principal
