"""The rate limits as HTTP sees them: who a request counts against, and the 429 answer.

Authenticated requests count against their credential (an API key, a provider's webhook
secret); failed authentications count against the client address, and an address over that
limit is refused before its credentials are even looked up.
"""

from __future__ import annotations

from collections.abc import Hashable

from starlette.requests import Request

from app.security.rate_limit import Decision, RateLimiter, TokenBuckets
from app.web.errors import Refused


def client_address(request: Request) -> str:
    """The peer address (behind a proxy, uvicorn's --forwarded-allow-ips makes it the client's)."""
    return request.client.host if request.client else "unknown"


def limiter(request: Request) -> RateLimiter:
    rate_limiter: RateLimiter = request.app.state.rate_limiter
    return rate_limiter


def _too_many(decision: Decision, what: str) -> Refused:
    wait = decision.retry_after_header
    return Refused(
        429, "RATE_LIMITED", f"too many {what}; retry in {wait} s", {"Retry-After": wait}
    )


def refuse_blocked_address(request: Request) -> None:
    """429 for an address that failed to authenticate too often lately."""
    decision = limiter(request).auth_failures.check(client_address(request))
    if not decision.allowed:
        raise _too_many(decision, "failed authentications from this address")


def record_failed_authentication(request: Request) -> None:
    limiter(request).auth_failures.take(client_address(request))


def spend(buckets: TokenBuckets, identity: Hashable) -> None:
    """Take a token of ``identity``'s bucket, or refuse with 429."""
    decision = buckets.take(identity)
    if not decision.allowed:
        raise _too_many(decision, "requests for this credential")
