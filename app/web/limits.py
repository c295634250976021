"""The rate limits as HTTP sees them: who a request counts against, and the 429 answer.

Authenticated requests count against their credential (an API key, a provider's webhook
secret); failed authentications count against the client address, and an address over that
limit gets 429 for its failures, never for a credential that verifies.
"""

from __future__ import annotations

from collections.abc import Hashable

from starlette.requests import Request

from app.security.rate_limit import Decision, Limit, RateLimiter
from app.web.errors import Refused


def client_address(request: Request) -> str:
    """The peer's address; the client's behind a proxy that ``serve --forwarded-allow-ips``
    trusts (uvicorn then puts the X-Forwarded-For address there), and never otherwise."""
    return request.client.host if request.client else "unknown"


def limiter(request: Request) -> RateLimiter:
    rate_limiter: RateLimiter = request.app.state.rate_limiter
    return rate_limiter


def _too_many(decision: Decision, what: str) -> Refused:
    wait = decision.retry_after_header
    return Refused(
        429, "RATE_LIMITED", f"too many {what}; retry in {wait} s", {"Retry-After": wait}
    )


async def failed_authentication(request: Request, refusal: Refused) -> Refused:
    """What a request that failed to authenticate gets: its own ``refusal`` (a 401), counted
    against the client address, or 429 once the address is over its limit. Only failures are
    throttled: a valid credential from the same address is still served, so a guessing client
    cannot lock out the clients and providers that share its address."""
    decision = await limiter(request).auth_failures.take(client_address(request))
    if not decision.allowed:
        return _too_many(decision, "failed authentications from this address")
    return refusal


async def spend(limit: Limit, identity: Hashable) -> None:
    """Take a token of ``identity``'s bucket, or refuse with 429."""
    decision = await limit.take(identity)
    if not decision.allowed:
        raise _too_many(decision, "requests for this credential")
