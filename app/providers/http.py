"""The one pooled HTTP client the sender's provider clients share, and the reading of what a
failed request means: not sent (retry), maybe sent (uncertain), or a provider's answer.

Retries are not a loop here. A touch to retry goes back to its dispatch row with the next
attempt time (``app.services.sending.backoff``), so the schedule survives a crash and a
waiting touch holds no connection and no concurrency slot; only the reading of
``Retry-After`` lives here.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from app.observability import metrics
from app.providers.outbound import Kind, Outcome

MAX_ERROR_CHARS = 500


def create_client(timeout_s: float, connections: int) -> httpx.AsyncClient:
    """Keep-alive connections for every provider; a connect or pool wait never exceeds 5 s."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s), pool=min(5.0, timeout_s)),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"Accept": "application/json", "User-Agent": "campaign-api-sender"},
        follow_redirects=False,
    )


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); None when absent or bad."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def json_body(payload: Any) -> bytes:
    """A request body as JSON, sent with ``JSON_CONTENT``: orjson encodes a batch of 500
    messages in a fraction of the json module's time, which a busy sender spends per touch."""
    return orjson.dumps(payload)


JSON_CONTENT = {"Content-Type": "application/json"}


def body_of(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None


def short(text: object) -> str:
    return str(text)[:MAX_ERROR_CHARS]


def transport_failure(exc: httpx.HTTPError) -> Outcome:
    """A request that got no answer: retry when it cannot have reached the provider,
    uncertain when it may have (written, then the answer was lost or late)."""
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Outcome(Kind.RETRY, error_code=name, error=f"no connection: {name}")
    return Outcome(Kind.UNCERTAIN, error_code=name, error=f"the answer was lost: {name}")


def transient_status(response: httpx.Response) -> Outcome | None:
    """429 and 5xx: the provider did not take the request, retry (after what it asked)."""
    if response.status_code == 429 or response.status_code >= 500:
        return Outcome(
            Kind.RETRY,
            error_code=f"HTTP {response.status_code}",
            error=short(response.text) or f"HTTP {response.status_code}",
            retry_after=retry_after(response),
        )
    return None


async def timed(
    provider: str, endpoint: str, call: Callable[[], Awaitable[httpx.Response]]
) -> httpx.Response:
    """``call``, observed in the provider latency histogram (failures included)."""
    started = time.perf_counter()
    try:
        return await call()
    finally:
        metrics.provider_request_seconds.labels(provider, endpoint).observe(
            time.perf_counter() - started
        )
