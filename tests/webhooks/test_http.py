"""The webhook endpoints over HTTP: authentication, refusals (nothing stored), secrets kept out
of the logs, the success body, and the OpenAPI description."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from tests.webhooks.helpers import (
    LEMLIST_SECRET,
    MAX_BYTES,
    PHANTOMBUSTER_SECRET,
    POSTMARK_AUTH,
    POSTMARK_PASSWORD,
    POSTMARK_USER,
    Step,
    basic_auth,
    count_rows,
    event,
    load,
    make_campaign,
    post_events,
    snapshot,
    stored_events,
    with_enrollment,
)

ENDPOINTS = ("events", "lemlist", "postmark", "phantombuster")
STEPS = (Step("email", 1, 0), Step("email", 2, 48))


async def nothing_stored(engine: AsyncEngine) -> None:
    for table in ("campaign_events", "event_outcomes", "instance_counter_shards"):
        assert await count_rows(engine, table) == 0, table


def sample_body(endpoint: str, enrollment_id: str) -> dict[str, Any]:
    """A valid request body for each endpoint, aimed at ``enrollment_id``."""
    if endpoint == "events":
        return event(enrollment_id, "opened", step=1)
    if endpoint == "lemlist":
        return with_enrollment(load("lemlist", "emailsOpened"), "lemlist", enrollment_id)
    if endpoint == "postmark":
        return with_enrollment(load("postmark", "Open"), "postmark", enrollment_id)
    payload = load("phantombuster", "message_sender_object")
    payload["resultObject"]["enrollmentId"] = enrollment_id
    return payload


@pytest.fixture
async def right_auth(webhook_key: str) -> dict[str, dict[str, Any]]:
    """For each endpoint: the request keyword arguments that authenticate it."""
    return {
        "events": {"headers": {"authorization": f"Bearer {webhook_key}"}},
        "lemlist": {"params": {"secret": LEMLIST_SECRET}},
        "postmark": {"headers": POSTMARK_AUTH},
        "phantombuster": {"params": {"secret": PHANTOMBUSTER_SECRET}},
    }


@pytest.fixture
async def enrollment_id(engine: AsyncEngine, app: Starlette) -> AsyncIterator[str]:
    campaign = await make_campaign(engine, STEPS, template_type="email")
    return campaign.enrollment_id


async def send(
    client: httpx.AsyncClient, endpoint: str, auth: dict[str, Any], **kwargs: Any
) -> httpx.Response:
    options = {key: dict(value) for key, value in auth.items()}
    if "headers" in kwargs:
        options.setdefault("headers", {}).update(kwargs.pop("headers"))
    return await client.post(f"/webhooks/{endpoint}", **options, **kwargs)


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message"}
    assert isinstance(body["error"], str)
    assert body["error"]
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


# ----------------------------------------------------------------------------- authentication

WRONG_AUTH: dict[str, list[dict[str, Any]]] = {
    "events": [
        {},
        {"headers": {"authorization": "Bearer not-a-key"}},
        {"headers": {"authorization": "Bearer "}},
    ],
    "lemlist": [
        {},
        {"params": {"secret": ""}},
        {"params": {"secret": LEMLIST_SECRET + "x"}},
        {"params": {"secret": LEMLIST_SECRET[:-1]}},
        {"params": {"secret": PHANTOMBUSTER_SECRET}},
        {"headers": {"authorization": f"Bearer {LEMLIST_SECRET}"}},
    ],
    "postmark": [
        {},
        {"headers": basic_auth(POSTMARK_USER, POSTMARK_PASSWORD + "x")},
        {"headers": basic_auth(POSTMARK_USER + "x", POSTMARK_PASSWORD)},
        {"headers": basic_auth("", POSTMARK_PASSWORD)},
        {"headers": basic_auth(POSTMARK_USER, "")},
        {"headers": {"authorization": f"Bearer {POSTMARK_PASSWORD}"}},
        {"headers": {"authorization": "Basic !!!not-base64!!!"}},
        {"params": {"secret": POSTMARK_PASSWORD}},
    ],
    "phantombuster": [
        {},
        {"params": {"secret": ""}},
        {"params": {"secret": PHANTOMBUSTER_SECRET + "x"}},
        {"params": {"secret": LEMLIST_SECRET}},
    ],
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_wrong_or_missing_credentials_get_401_and_store_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, endpoint: str
) -> None:
    body = sample_body(endpoint, enrollment_id)
    for auth in WRONG_AUTH[endpoint]:
        response = await send(client, endpoint, auth, json=body)
        assert_error(response, 401)
    await nothing_stored(engine)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_right_credentials_store_the_event(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    right_auth: dict[str, dict[str, Any]],
    endpoint: str,
) -> None:
    response = await send(
        client, endpoint, right_auth[endpoint], json=sample_body(endpoint, enrollment_id)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "orphaned": 0, "ignored": 0}
    events = await stored_events(engine)
    assert len(events) == 1
    assert str(events[0]["enrollment_id"]) == enrollment_id
    assert events[0]["provider"] == {"events": "api"}.get(endpoint, endpoint)


@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        (frozenset({Scope.READ}), 403),
        (frozenset({Scope.READ, Scope.WRITE}), 403),
        (frozenset({Scope.WEBHOOKS}), 200),
        (frozenset({Scope.READ, Scope.WEBHOOKS}), 200),
    ],
)
async def test_generic_endpoint_needs_the_webhooks_scope(
    app: Starlette,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    scopes: frozenset[Scope],
    status: int,
) -> None:
    async with app.state.sessionmaker.begin() as session:
        key = await create_api_key(session, "scoped", scopes)
    response = await post_events(client, key, event(enrollment_id, "opened", step=1))
    if status == 200:
        assert response.status_code == 200, response.text
        assert await count_rows(engine, "campaign_events") == 1
    else:
        assert_error(response, 403)
        await nothing_stored(engine)


async def test_x_api_key_header_is_accepted_too(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, webhook_key: str
) -> None:
    response = await client.post(
        "/webhooks/events",
        json=event(enrollment_id, "opened", step=1),
        headers={"x-api-key": webhook_key},
    )
    assert response.status_code == 200, response.text
    assert await count_rows(engine, "campaign_events") == 1


UNCONFIGURED_ATTEMPTS: dict[str, list[dict[str, Any]]] = {
    "lemlist": [{}, {"params": {"secret": ""}}, {"params": {"secret": LEMLIST_SECRET}}],
    "postmark": [
        {},
        {"headers": basic_auth("", "")},
        {"headers": basic_auth(POSTMARK_USER, POSTMARK_PASSWORD)},
        {"headers": {"authorization": "Basic Og=="}},  # ":"
    ],
    "phantombuster": [
        {},
        {"params": {"secret": ""}},
        {"params": {"secret": PHANTOMBUSTER_SECRET}},
    ],
}


@pytest.mark.parametrize("endpoint", sorted(UNCONFIGURED_ATTEMPTS))
async def test_unconfigured_secret_refuses_everything(
    bare_client: httpx.AsyncClient, engine: AsyncEngine, endpoint: str
) -> None:
    campaign = await make_campaign(engine, STEPS, template_type="email")
    body = sample_body(endpoint, campaign.enrollment_id)
    for auth in UNCONFIGURED_ATTEMPTS[endpoint]:
        response = await send(bare_client, endpoint, auth, json=body)
        assert_error(response, 401)
    await nothing_stored(engine)


# ----------------------------------------------------------------------------- logs


async def test_secrets_and_addresses_never_reach_the_logs(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    webhook_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    lemlist_body = sample_body("lemlist", enrollment_id)
    postmark_body = sample_body("postmark", enrollment_id)
    phantom_body = sample_body("phantombuster", enrollment_id)
    wrong = {
        "lemlist": "wrong-" + LEMLIST_SECRET[::-1],
        "phantombuster": "wrong-" + PHANTOMBUSTER_SECRET[::-1],
        "postmark": "wrong-" + POSTMARK_PASSWORD[::-1],
    }
    for secret in (wrong["lemlist"], LEMLIST_SECRET):
        await client.post("/webhooks/lemlist", params={"secret": secret}, json=lemlist_body)
    for secret in (wrong["phantombuster"], PHANTOMBUSTER_SECRET):
        await client.post("/webhooks/phantombuster", params={"secret": secret}, json=phantom_body)
    for password in (wrong["postmark"], POSTMARK_PASSWORD):
        await client.post(
            "/webhooks/postmark", headers=basic_auth(POSTMARK_USER, password), json=postmark_body
        )
    for key in ("cak_wrong_" + webhook_key[::-1], webhook_key):
        await post_events(client, key, event(enrollment_id, "opened", step=1))
    # The four requests with the right credentials were stored (they really went through).
    assert await count_rows(engine, "campaign_events") == 4

    secrets = [
        LEMLIST_SECRET,
        PHANTOMBUSTER_SECRET,
        POSTMARK_PASSWORD,
        webhook_key,
        *wrong.values(),
        lemlist_body["leadEmail"],
        postmark_body["Recipient"],
    ]
    # Only the server's records: httpx and httpcore are the test's own client, which logs the
    # URL it requests (a provider's client is not ours to police).
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name.startswith("campaign_api") for r in records), "refusals are logged"
    for record in records:
        message = record.getMessage()
        for secret in secrets:
            assert secret not in message, (record.name, message)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_non_json_content_type_is_415(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    right_auth: dict[str, dict[str, Any]],
    endpoint: str,
) -> None:
    content = json.dumps(sample_body(endpoint, enrollment_id)).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/json", None):
        headers = {} if content_type is None else {"content-type": content_type}
        response = await send(
            client, endpoint, right_auth[endpoint], content=content, headers=headers
        )
        assert_error(response, 415)
    await nothing_stored(engine)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_json_with_charset_is_accepted(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    right_auth: dict[str, dict[str, Any]],
    endpoint: str,
) -> None:
    content = json.dumps(sample_body(endpoint, enrollment_id)).encode()
    headers = {"content-type": "application/json; charset=utf-8"}
    response = await send(client, endpoint, right_auth[endpoint], content=content, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_malformed_json_is_400(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    right_auth: dict[str, dict[str, Any]],
    endpoint: str,
) -> None:
    headers = {"content-type": "application/json"}
    for content in (b"{not json", b"", b'{"a": 1', b"\xff\xfe", b"[1, 2,]", b"NaN-ish"):
        response = await send(
            client, endpoint, right_auth[endpoint], content=content, headers=headers
        )
        assert_error(response, 400)
    await nothing_stored(engine)


MISSING_FIELDS = {
    "events": ["enrollment_id", "event_type"],
    "lemlist": ["_id", "type"],
    "postmark": ["RecordType"],
    "phantombuster": ["containerId", "agentId"],
}


@pytest.mark.parametrize(
    ("endpoint", "field"), [(e, f) for e, fields in MISSING_FIELDS.items() for f in fields]
)
async def test_missing_required_field_is_400_naming_it(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    right_auth: dict[str, dict[str, Any]],
    endpoint: str,
    field: str,
) -> None:
    body = sample_body(endpoint, enrollment_id)
    del body[field]
    response = await send(client, endpoint, right_auth[endpoint], json=body)
    assert field in assert_error(response, 400)["message"]
    await nothing_stored(engine)


async def test_postmark_bounce_without_id_is_400_naming_it(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str
) -> None:
    body = with_enrollment(load("postmark", "Bounce"), "postmark", enrollment_id)
    del body["ID"]
    response = await client.post("/webhooks/postmark", headers=POSTMARK_AUTH, json=body)
    assert "ID" in assert_error(response, 400)["message"]
    await nothing_stored(engine)


async def test_a_bad_event_in_a_batch_refuses_the_whole_batch(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, webhook_key: str
) -> None:
    good = [event(enrollment_id, "sent", step=1), event(enrollment_id, "opened", step=1)]
    missing = {k: v for k, v in event(enrollment_id, "clicked").items() if k != "event_type"}
    response = await post_events(client, webhook_key, [*good, missing])
    body = assert_error(response, 400)
    assert "event_type" in body["message"]
    assert "events[2]" in body["message"]
    # Valid for the adapter, refused by the domain rules (a LinkedIn type on email, step 0).
    for bad in (
        event(enrollment_id, "connection_requested", step=1, channel="email"),
        event(enrollment_id, "opened", step=0),
    ):
        response = await post_events(client, webhook_key, [*good, bad])
        assert_error(response, 400)
    await nothing_stored(engine)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    right_auth: dict[str, dict[str, Any]],
    endpoint: str,
) -> None:
    body = sample_body(endpoint, enrollment_id)
    body["padding"] = "x" * MAX_BYTES
    content = json.dumps(body).encode()
    assert len(content) > MAX_BYTES
    headers = {"content-type": "application/json"}
    response = await send(client, endpoint, right_auth[endpoint], content=content, headers=headers)
    assert_error(response, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit must still hold
        for start in range(0, len(content), 16_384):
            yield content[start : start + 16_384]

    response = await send(client, endpoint, right_auth[endpoint], content=chunks(), headers=headers)
    assert_error(response, 413)
    await nothing_stored(engine)


@pytest.mark.parametrize(
    ("declared", "status"), [(b"9" * 5_000, 413), ("\u00b2".encode("latin-1"), 200)]
)
async def test_a_declared_length_int_cannot_read_is_no_500(
    client: httpx.AsyncClient, enrollment_id: str, webhook_key: str, declared: bytes, status: int
) -> None:
    """5,000 digits is too large; a non-ASCII digit is no length, so the body is measured."""
    response = await client.post(
        "/webhooks/events",
        content=json.dumps(event(enrollment_id, "opened", step=1)).encode(),
        headers={
            "authorization": f"Bearer {webhook_key}",
            "content-type": "application/json",
            "content-length": declared,
        },
    )
    assert response.status_code == status, response.text


async def test_body_just_under_the_limit_is_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, webhook_key: str
) -> None:
    item = event(enrollment_id, "opened", step=1)
    size = len(json.dumps({"events": [item]}).encode())
    count = MAX_BYTES // (size + 2)
    items = [event(enrollment_id, "opened", step=1) for _ in range(count)]
    assert len(json.dumps({"events": items}).encode()) <= MAX_BYTES
    response = await post_events(client, webhook_key, items)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == count


async def test_over_1000_events_is_400_and_1000_are_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, webhook_key: str
) -> None:
    item = {"enrollment_id": enrollment_id, "event_type": "delivered"}
    response = await post_events(client, webhook_key, [item] * 1001)
    assert_error(response, 400)
    await nothing_stored(engine)
    response = await post_events(client, webhook_key, [item] * 1000)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1000
    assert await count_rows(engine, "campaign_events") == 1000


# ----------------------------------------------------------------------------- success body


async def test_success_body_counts_each_kind(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, webhook_key: str
) -> None:
    """accepted = stored, duplicates = already stored, ignored = untracked types; orphaned is
    the part of accepted whose enrollment is unknown. Every posted event is exactly one of
    accepted, duplicate or ignored."""
    earlier = event(enrollment_id, "sent", step=1)
    assert (await post_events(client, webhook_key, [earlier])).status_code == 200
    repeated = event(enrollment_id, "opened", step=1)
    orphan = event("0b7d3d4e-1c2f-4a5b-8c9d-0e1f2a3b4c5d", "opened", step=1)
    batch = [
        event(enrollment_id, "delivered", step=1),
        repeated,
        repeated,  # the same event twice in one request
        earlier,  # stored by an earlier request
        orphan,
        event(enrollment_id, "meeting_booked"),
        event(enrollment_id, "clicked", step=1),
    ]
    response = await post_events(client, webhook_key, batch)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 4, "duplicates": 2, "orphaned": 1, "ignored": 1}
    assert await count_rows(engine, "campaign_events") == 1 + 4


async def test_provider_success_bodies(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str
) -> None:
    ignored = await client.post(
        "/webhooks/lemlist",
        params={"secret": LEMLIST_SECRET},
        json=with_enrollment(load("lemlist", "paused"), "lemlist", enrollment_id),
    )
    assert ignored.json() == {"accepted": 0, "duplicates": 0, "orphaned": 0, "ignored": 1}
    reactivated = await client.post(
        "/webhooks/postmark",
        headers=POSTMARK_AUTH,
        json=with_enrollment(
            load("postmark", "SubscriptionChange_reactivated"), "postmark", enrollment_id
        ),
    )
    assert reactivated.json() == {"accepted": 0, "duplicates": 0, "orphaned": 0, "ignored": 1}
    empty = await client.post(
        "/webhooks/phantombuster",
        params={"secret": PHANTOMBUSTER_SECRET},
        json=load("phantombuster", "no_rows"),
    )
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"accepted": 0, "duplicates": 0, "orphaned": 0, "ignored": 0}
    assert await count_rows(engine, "campaign_events") == 0

    run = load("phantombuster", "network_booster_string")
    rows = json.loads(run["resultObject"])
    rows[0]["enrollmentId"] = enrollment_id  # the other row's enrollment is unknown
    run["resultObject"] = json.dumps(rows)
    first = await client.post(
        "/webhooks/phantombuster", params={"secret": PHANTOMBUSTER_SECRET}, json=run
    )
    assert first.json() == {"accepted": 2, "duplicates": 0, "orphaned": 1, "ignored": 0}
    again = await client.post(
        "/webhooks/phantombuster", params={"secret": PHANTOMBUSTER_SECRET}, json=run
    )
    assert again.json() == {"accepted": 0, "duplicates": 2, "orphaned": 0, "ignored": 0}
    events = {e["provider_event_id"]: e for e in await stored_events(engine)}
    assert set(events) == {f"{run['containerId']}:{row['enrollmentId']}" for row in rows}
    mine = events[f"{run['containerId']}:{enrollment_id}"]
    assert (mine["event_type"], mine["channel"]) == ("connection_requested", "linkedin")


async def test_refusals_leave_every_table_untouched(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, webhook_key: str
) -> None:
    assert (
        await post_events(client, webhook_key, [event(enrollment_id, "sent", step=1)])
    ).is_success
    before = await snapshot(engine)
    headers = {"authorization": f"Bearer {webhook_key}"}
    attempts = [
        client.post("/webhooks/events", json=event(enrollment_id, "replied")),
        client.post(
            "/webhooks/events", content=b"{", headers=headers | {"content-type": "application/json"}
        ),
        client.post(
            "/webhooks/events", content=b"{}", headers=headers | {"content-type": "text/plain"}
        ),
        client.post(
            "/webhooks/events",
            json={"events": [event(enrollment_id, "replied"), {}]},
            headers=headers,
        ),
    ]
    for attempt in attempts:
        assert (await attempt).status_code >= 400
    assert await snapshot(engine) == before


# ----------------------------------------------------------------------------- OpenAPI


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/webhooks/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    paths = doc["paths"]
    for endpoint in ENDPOINTS:
        operation = paths[f"/webhooks/{endpoint}"]["post"]
        assert "application/json" in operation["requestBody"]["content"]
        assert "200" in operation["responses"]
        for status in ("400", "401", "413", "415", "429"):
            assert status in operation["responses"], (endpoint, status)
        for requirement in operation["security"]:
            for scheme in requirement:
                assert scheme in doc["components"]["securitySchemes"]
    counts = paths["/webhooks/events"]["post"]["responses"]["200"]["content"]["application/json"]
    assert set(counts["schema"]["required"]) == {"accepted", "duplicates", "orphaned", "ignored"}
    # Every $ref (if any) resolves inside the document.
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        node: Any = doc
        for segment in ref.removeprefix("#/").split("/"):
            node = node[segment]
