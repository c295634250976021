"""Token buckets, and the 429s of /graphql and the webhooks at their boundaries.

The clock is a hand-moved fake: the Nth request of a minute passes and the N+1th is refused
whatever the machine's speed, and waiting ``Retry-After`` seconds is a clock move.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from app.cli import _parser
from app.cli import serve as cli_serve
from app.cli.common import CommandError
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.security.rate_limit import RateLimiter, TokenBuckets
from app.settings import ConfigError, RateLimitStore, Settings, load_settings
from app.web.asgi import create_app
from tests.live_server import serving

QUERY = {"query": "{ __typename }"}
LEMLIST_SECRET = "lemlist-secret-for-rate-tests"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- the buckets themselves -------------------------------------------------------------


def test_a_bucket_allows_its_rate_then_refuses_until_a_token_is_back() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(6, clock=clock)
    assert all(buckets.take("k").allowed for _ in range(6))
    refused = buckets.take("k")
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(60 / 6)
    clock.advance(refused.retry_after_s - 0.01)
    assert not buckets.take("k").allowed
    clock.advance(0.01)
    assert buckets.take("k").allowed
    assert not buckets.take("k").allowed


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(600, clock=clock)
    for _ in range(600):
        buckets.take("k")
    refused = buckets.take("k")
    assert refused.retry_after_s == pytest.approx(0.1)
    assert refused.retry_after_header == "1"
    slow = TokenBuckets(7, clock=clock)
    for _ in range(7):
        slow.take("k")
    assert slow.take("k").retry_after_header == str(math.ceil(60 / 7))


def test_keys_have_their_own_buckets_and_check_spends_nothing() -> None:
    buckets = TokenBuckets(2, clock=FakeClock())
    assert buckets.check("a").allowed
    assert buckets.take("a").allowed
    assert buckets.take("a").allowed
    assert not buckets.check("a").allowed
    assert buckets.take("b").allowed


def test_idle_buckets_are_dropped_once_full_again() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(60, clock=clock)
    for n in range(50):
        for _ in range(60):  # empty: a minute to fill up again
            buckets.take(n)
    assert len(buckets) == 50
    clock.advance(59)
    buckets.take("fresh")
    assert len(buckets) == 51
    clock.advance(1)
    buckets.take("fresh")
    assert len(buckets) == 1


def test_the_table_never_grows_past_its_bound() -> None:
    buckets = TokenBuckets(10, clock=FakeClock(), max_buckets=100)
    for n in range(1_000):
        buckets.take(n)
    assert len(buckets) == 100


# --- over HTTP ----------------------------------------------------------------------------


@asynccontextmanager
async def limited_app(
    settings: Settings, **limits: Any
) -> AsyncIterator[tuple[Starlette, FakeClock]]:
    # This process's own buckets, whose clock a test moves: the store that every process
    # shares runs on the database's clock, and has tests of its own (test_shared_rate_limits).
    application = create_app(
        settings.model_copy(update={"rate_limit_store": RateLimitStore.MEMORY, **limits})
    )
    async with application.router.lifespan_context(application):
        clock = FakeClock()
        application.state.rate_limiter = RateLimiter(application.state.settings, clock=clock)
        yield application, clock


def client_from(app: Starlette, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def new_key(app: Starlette, name: str, scopes: frozenset[Scope]) -> str:
    async with app.state.sessionmaker.begin() as session:
        return await create_api_key(session, name, scopes)


def assert_429(response: httpx.Response, per_minute: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "RATE_LIMITED"
    assert response.headers["retry-after"] == str(max(1, math.ceil(60 / per_minute)))


async def test_the_nth_request_of_a_key_passes_and_the_next_is_429(
    settings: Settings, clean_db: None
) -> None:
    per_minute = 7
    async with limited_app(settings, rate_limit_per_minute=per_minute) as (app, clock):
        key = await new_key(app, "reader", frozenset({Scope.READ}))
        other = await new_key(app, "other", frozenset({Scope.READ}))
        headers = {"authorization": f"Bearer {key}"}
        async with client_from(app) as client:
            for _ in range(per_minute):
                response = await client.post("/graphql", json=QUERY, headers=headers)
                assert response.status_code == 200
            refused = await client.post("/graphql", json=QUERY, headers=headers)
            assert_429(refused, per_minute)
            assert refused.headers["x-request-id"]
            response = await client.post(
                "/graphql", json=QUERY, headers={"authorization": f"Bearer {other}"}
            )
            assert response.status_code == 200
            clock.advance(int(refused.headers["retry-after"]))
            response = await client.post("/graphql", json=QUERY, headers=headers)
            assert response.status_code == 200


async def test_failures_are_throttled_but_a_valid_key_from_the_address_is_served(
    settings: Settings, clean_db: None
) -> None:
    """20 wrong keys from one address (the default limit) and more: the failures get 401 then
    429, while a valid key from that same address is served every time; other addresses are
    not affected, and once the bucket has refilled a failure is a 401 again."""
    per_minute = Settings.model_fields["auth_failures_per_minute"].default
    async with limited_app(settings, auth_failures_per_minute=per_minute) as (app, clock):
        key = await new_key(app, "reader", frozenset({Scope.READ}))
        valid = {"authorization": f"Bearer {key}"}
        async with client_from(app, "198.51.100.1") as shared:
            for n in range(per_minute):
                wrong = {"authorization": f"Bearer cak_wrong{n}"}
                response = await shared.post("/graphql", json=QUERY, headers=wrong)
                assert response.status_code == 401
            for n in range(5):
                refused = await shared.post(
                    "/graphql", json=QUERY, headers={"authorization": f"Bearer cak_more{n}"}
                )
                assert_429(refused, per_minute)
                response = await shared.post("/graphql", json=QUERY, headers=valid)
                assert response.status_code == 200, response.text
                assert response.json() == {"data": {"__typename": "Query"}}
            assert_429(await shared.post("/graphql", json=QUERY), per_minute)
            async with client_from(app, "198.51.100.2") as neighbour:
                response = await neighbour.post("/graphql", json=QUERY, headers={"x-api-key": "x"})
                assert response.status_code == 401
            clock.advance(int(refused.headers["retry-after"]))
            response = await shared.post("/graphql", json=QUERY, headers={"x-api-key": "cak_x"})
            assert response.status_code == 401


async def test_successful_requests_do_not_count_as_failures(
    settings: Settings, clean_db: None
) -> None:
    async with limited_app(settings, auth_failures_per_minute=2) as (app, _):
        key = await new_key(app, "reader", frozenset({Scope.READ}))
        async with client_from(app) as client:
            for _ in range(10):
                response = await client.post(
                    "/graphql", json=QUERY, headers={"authorization": f"Bearer {key}"}
                )
                assert response.status_code == 200


def lemlist_event(n: int) -> dict[str, Any]:
    return {"_id": f"rate-{n}", "type": "emailsSent", "enrollmentId": "unknown-enrollment"}


async def test_webhooks_have_their_own_limit_per_secret(settings: Settings, clean_db: None) -> None:
    per_minute = 4
    async with limited_app(
        settings,
        webhook_rate_limit_per_minute=per_minute,
        rate_limit_per_minute=1,
        lemlist_webhook_secret=SecretStr(LEMLIST_SECRET),
    ) as (app, _):
        key = await new_key(app, "ingest", frozenset({Scope.WEBHOOKS}))
        lemlist = f"/webhooks/lemlist?secret={LEMLIST_SECRET}"
        async with client_from(app) as client:
            for n in range(per_minute):
                response = await client.post(lemlist, json=lemlist_event(n))
                assert response.status_code == 200, response.text
            assert_429(await client.post(lemlist, json=lemlist_event(99)), per_minute)
            # The generic endpoint's API key has a bucket of its own, at the webhook rate.
            generic = {"enrollment_id": "unknown", "event_type": "sent"}
            headers = {"x-api-key": key}
            for _ in range(per_minute):
                response = await client.post("/webhooks/events", json=generic, headers=headers)
                assert response.status_code == 200, response.text
            assert_429(
                await client.post("/webhooks/events", json=generic, headers=headers), per_minute
            )


@pytest.mark.parametrize(
    "attempt",
    [
        lambda c: c.post("/webhooks/lemlist?secret=wrong", json=lemlist_event(1)),
        lambda c: c.post("/webhooks/events", json={}, headers={"x-api-key": "cak_wrong"}),
        lambda c: c.post("/graphql", json=QUERY),
        lambda c: c.get("/metrics", headers={"x-api-key": "cak_wrong"}),
    ],
    ids=["webhook secret", "webhook key", "graphql without key", "metrics"],
)
async def test_failed_webhook_and_graphql_attempts_share_the_address_limit(
    settings: Settings, clean_db: None, attempt: Callable[[httpx.AsyncClient], Any]
) -> None:
    per_minute = 3
    async with (
        limited_app(
            settings,
            auth_failures_per_minute=per_minute,
            lemlist_webhook_secret=SecretStr(LEMLIST_SECRET),
        ) as (app, _),
        client_from(app) as client,
    ):
        for _ in range(per_minute):
            assert (await attempt(client)).status_code == 401
        assert_429(await attempt(client), per_minute)
        # The provider sharing the address still delivers; only the failures are throttled.
        response = await client.post(
            f"/webhooks/lemlist?secret={LEMLIST_SECRET}", json=lemlist_event(1)
        )
        assert response.status_code == 200, response.text
        assert_429(await attempt(client), per_minute)


# --- behind a proxy, or not -----------------------------------------------------------------


async def failures_from_rotating_addresses(base: str, count: int, address: str = "") -> list[int]:
    """``count`` wrong keys over real HTTP, each claiming its own X-Forwarded-For address
    (or all the same one, when ``address`` is given)."""
    async with httpx.AsyncClient(base_url=base) as client:
        return [
            (
                await client.post(
                    "/graphql",
                    json=QUERY,
                    headers={
                        "x-api-key": f"cak_wrong{n}",
                        "x-forwarded-for": address or f"203.0.113.{n}",
                    },
                )
            ).status_code
            for n in range(count)
        ]


async def test_rotating_x_forwarded_for_does_not_evade_the_failure_limit(
    settings: Settings, clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No proxy is trusted unless configured (uvicorn's own default trusts 127.0.0.1): every
    failure counts against the peer, whatever address the request claims."""
    per_minute = 5
    async with (
        limited_app(settings, auth_failures_per_minute=per_minute) as (app, _),
        serving(app, app.state.settings, monkeypatch) as base,
    ):
        statuses = await failures_from_rotating_addresses(base, per_minute + 3)
    assert statuses == [401] * per_minute + [429] * 3


async def test_a_trusted_proxy_s_x_forwarded_for_names_the_client(
    settings: Settings, clean_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_minute = 3
    async with (
        limited_app(
            settings, auth_failures_per_minute=per_minute, forwarded_allow_ips="127.0.0.1"
        ) as (app, _),
        serving(app, app.state.settings, monkeypatch) as base,
    ):
        guesser = await failures_from_rotating_addresses(base, per_minute + 1, "203.0.113.9")
        neighbour = await failures_from_rotating_addresses(base, 1, "203.0.113.10")
    assert guesser == [401] * per_minute + [429]
    assert neighbour == [401]


def served_options(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str
) -> dict[str, Any]:
    """What ``campaign-api serve ARGV`` hands uvicorn."""
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kwargs: captured.update(kwargs))
    cli_serve.cmd_serve(settings, _parser().parse_args(["serve", *argv]))
    return captured


def test_serve_trusts_forwarded_headers_only_from_the_configured_proxies(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = served_options(settings, monkeypatch)
    assert (default["proxy_headers"], default["forwarded_allow_ips"]) == (False, "")

    flagged = served_options(
        settings, monkeypatch, "--forwarded-allow-ips", "10.0.0.0/8, 127.0.0.1"
    )
    assert (flagged["proxy_headers"], flagged["forwarded_allow_ips"]) == (
        True,
        "10.0.0.0/8,127.0.0.1",
    )
    configured = settings.model_copy(update={"forwarded_allow_ips": "192.0.2.1"})
    assert served_options(configured, monkeypatch)["forwarded_allow_ips"] == "192.0.2.1"

    with pytest.raises(CommandError, match=r"'10\.0\.0\.300' is not an IP address or network"):
        served_options(settings, monkeypatch, "--forwarded-allow-ips", "10.0.0.300")


def test_a_malformed_forwarded_allow_ips_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAMPAIGN_FORWARDED_ALLOW_IPS", "127.0.0.1,localhost")
    with pytest.raises(ConfigError, match=r"CAMPAIGN_FORWARDED_ALLOW_IPS: 'localhost' is not"):
        load_settings()
