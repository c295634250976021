"""Values a black-box attack found answered with HTTP 500 (issue 24, item 4): times outside
what PostgreSQL and Python both hold, JSON nested far too deep, text that is not valid
Unicode. Each gets a 400 in the shim's error format naming the field, and stores nothing;
the widest values that are allowed are stored and read back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.domain.limits import JSON_NESTING_MAX
from app.settings import Settings
from app.web.asgi import create_app
from tests.graphql_client import gql
from tests.webhooks.conftest import webhook_settings
from tests.webhooks.helpers import (
    LEMLIST_SECRET,
    PHANTOMBUSTER_SECRET,
    POSTMARK_AUTH,
    Step,
    count_rows,
    event,
    load,
    make_campaign,
    stored_events,
)
from tests.webhooks.test_http import assert_error, nothing_stored, sample_body
from tests.webhooks.test_robustness import answered

ENDPOINTS = ("events", "lemlist", "postmark", "phantombuster")
STEPS = (Step("email", 1, 0), Step("email", 2, 720))
OUT_OF_RANGE = ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00")
TIME_FIELD = {
    "events": "occurred_at",
    "lemlist": "createdAt",
    "postmark": "ReceivedAt",
    "phantombuster": "timestamp",
}


def auth(endpoint: str, webhook_key: str) -> dict[str, Any]:
    return {
        "events": {"headers": {"authorization": f"Bearer {webhook_key}"}},
        "lemlist": {"params": {"secret": LEMLIST_SECRET}},
        "postmark": {"headers": POSTMARK_AUTH},
        "phantombuster": {"params": {"secret": PHANTOMBUSTER_SECRET}},
    }[endpoint]


async def post_raw(
    client: httpx.AsyncClient, endpoint: str, webhook_key: str, payload: Any
) -> httpx.Response:
    """The payload as JSON with non-ASCII escaped, so a lone surrogate travels as the
    ``\\ud800`` escape an attacker sends (a client cannot encode it as UTF-8)."""
    options = auth(endpoint, webhook_key)
    headers = {"content-type": "application/json", **options.get("headers", {})}
    return await answered(
        client.post(
            f"/webhooks/{endpoint}",
            content=json.dumps(payload).encode(),
            headers=headers,
            params=options.get("params"),
        )
    )


def with_time(endpoint: str, enrollment_id: str, moment: str) -> dict[str, Any]:
    body = sample_body(endpoint, enrollment_id)
    if endpoint == "phantombuster":
        body["resultObject"]["timestamp"] = moment
    else:
        body[TIME_FIELD[endpoint]] = moment
    return body


@pytest.fixture
async def enrollment_id(engine: AsyncEngine, app: Starlette) -> str:
    return (await make_campaign(engine, STEPS, template_type="email")).enrollment_id


# ----------------------------------------------------------------------------- times


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_time_out_of_range_is_a_400_naming_its_field(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    webhook_key: str,
    endpoint: str,
    moment: str,
) -> None:
    response = await post_raw(
        client, endpoint, webhook_key, with_time(endpoint, enrollment_id, moment)
    )
    body = assert_error(response, 400)
    assert body["error"] == "INVALID_PAYLOAD"
    assert f"field '{TIME_FIELD[endpoint]}'" in body["message"]
    assert "UTC offset" in body["message"]
    await nothing_stored(engine)


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-02T00:00:00Z",  # Python holds it, but not its next step 720 hours later
        "0001-01-01T00:00:00+00:01",  # year 0 in UTC
        "9999-12-31T23:59:59.999999+00:00",
    ],
)
async def test_just_past_either_end_is_refused_too(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    webhook_key: str,
    moment: str,
) -> None:
    response = await post_raw(
        client, "lemlist", webhook_key, with_time("lemlist", enrollment_id, moment)
    )
    assert_error(response, 400)
    await nothing_stored(engine)


ENROLLMENT_TIMES = """
query($id: ID!) { enrollment(id: $id) {
  status currentStep nextActionAt events(first: 5) { nodes { eventType occurredAt } }
} }
"""


async def test_the_widest_times_allowed_are_stored_and_read_back(
    client: httpx.AsyncClient, engine: AsyncEngine, webhook_key: str, read_key: str
) -> None:
    """The latest time a send may carry leaves room for the longest step delay (720 hours):
    the next step's due time computed from it still reads back through GraphQL."""
    campaign = await make_campaign(engine, STEPS, template_type="email")
    latest, earliest = "9999-12-01T23:59:59Z", "0001-01-01T00:00:00Z"
    e = campaign.enrollment_id
    for body in (event(e, "sent", step=1), event(e, "opened", step=1)):
        body["occurred_at"] = latest if body["event_type"] == "sent" else earliest
        response = await post_raw(client, "events", webhook_key, body)
        assert response.status_code == 200, response.text
    result = await gql(client, read_key, ENROLLMENT_TIMES, {"id": e})
    assert "errors" not in result, result
    enrollment = result["data"]["enrollment"]
    assert enrollment["currentStep"] == 1
    assert enrollment["nextActionAt"].startswith("9999-12-31T23:59:59")
    times = {n["eventType"]: n["occurredAt"] for n in enrollment["events"]["nodes"]}
    assert times["SENT"].startswith("9999-12-01T23:59:59")
    assert times["OPENED"].startswith("0001-01-01T00:00:00")


RECORD_EVENT = """
mutation($input: RecordEventInput!) {
  recordEvent(input: $input) { event { id } duplicate errors { field code message } }
}
"""


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
async def test_record_event_names_a_time_out_of_range(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, write_key: str, moment: str
) -> None:
    variables = {
        "input": {"enrollmentId": enrollment_id, "eventType": "OPENED", "occurredAt": moment}
    }
    result = await gql(client, write_key, RECORD_EVENT, variables)
    assert "errors" not in result, result
    payload = result["data"]["recordEvent"]
    assert payload["event"] is None
    [error] = payload["errors"]
    assert error["field"] == ["input", "occurredAt"]
    assert error["code"] == "INVALID"
    assert "UTC offset" in error["message"]
    await nothing_stored(engine)


# ----------------------------------------------------------------------------- nesting


@pytest.fixture
async def roomy_client(settings: Settings, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    """The shim with the default 5 MB body limit: room for the attack's 200 KB of brackets."""
    application = create_app(
        webhook_settings(settings).model_copy(update={"webhook_max_bytes": 5 * 1024 * 1024})
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_a_result_object_string_nested_100000_deep_is_a_400(
    roomy_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    payload = load("phantombuster", "message_sender_object")
    payload["resultObject"] = "[" * 100_000 + "]" * 100_000
    response = await post_raw(roomy_client, "phantombuster", "", payload)
    body = assert_error(response, 400)
    assert body["error"] == "INVALID_PAYLOAD"
    assert "'resultObject'" in body["message"]
    assert f"nested deeper than {JSON_NESTING_MAX}" in body["message"]
    await nothing_stored(engine)


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [JSON_NESTING_MAX + 1, 900])
@pytest.mark.parametrize("where", ["body", "resultObject string"])
async def test_json_nested_past_the_bound_is_a_400_however_it_arrives(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, where: str, depth: int
) -> None:
    """Within Python's recursion limit but past the bound: refused before anything walks it
    (a row's ``error`` is turned into text recursively: at 900 deep, a few frames from the
    recursion limit)."""
    payload = sample_body("phantombuster", enrollment_id)
    row = payload["resultObject"] | {"error": nested(depth, "x")}
    payload["resultObject"] = [row] if where == "body" else json.dumps([row])
    response = await post_raw(client, "phantombuster", "", payload)
    body = assert_error(response, 400)
    assert f"deeper than {JSON_NESTING_MAX}" in body["message"]
    await nothing_stored(engine)


async def test_json_nested_up_to_the_bound_is_accepted(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str
) -> None:
    payload = sample_body("phantombuster", enrollment_id)
    # body → resultObject → row → error: 3 levels before the error's own.
    error = nested(JSON_NESTING_MAX - 3, "boom")
    payload["resultObject"] = [payload["resultObject"] | {"error": error}]
    response = await post_raw(client, "phantombuster", "", payload)
    assert response.status_code == 200, response.text
    assert await count_rows(engine, "campaign_events") == 1


# ----------------------------------------------------------------------------- surrogates


def string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every string value of a payload, by path."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from string_paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from string_paths(child, (*path, index))


def replaced(value: Any, path: tuple[Any, ...], text: str) -> Any:
    if not path:
        return text
    head, *rest = path
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = replaced(value[head], tuple(rest), text)
    return copy


def dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


SURROGATE_CASES = [
    (endpoint, path)
    for endpoint in ENDPOINTS
    for path in string_paths(sample_body(endpoint, "5d2b1c7e-3f0a-4c1e-9d2b-7a8e6f5c4b3a"))
]


@pytest.mark.parametrize(
    ("endpoint", "path"), SURROGATE_CASES, ids=[f"{e}:{dotted(p)}" for e, p in SURROGATE_CASES]
)
async def test_a_lone_surrogate_in_any_string_is_a_400_naming_it(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    enrollment_id: str,
    webhook_key: str,
    endpoint: str,
    path: tuple[Any, ...],
) -> None:
    payload = replaced(sample_body(endpoint, enrollment_id), path, "a\ud800b")
    response = await post_raw(client, endpoint, webhook_key, payload)
    body = assert_error(response, 400)
    assert body["error"] == "INVALID_PAYLOAD"
    assert body["message"].startswith(f"field '{dotted(path)}' is not valid Unicode"), body
    assert "U+D800" in body["message"]
    await nothing_stored(engine)


async def test_a_lone_surrogate_as_a_key_or_inside_a_result_object_string_is_named(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, webhook_key: str
) -> None:
    generic = event(enrollment_id, "opened", step=1, metadata={"\udc00": 1})
    response = await post_raw(client, "events", webhook_key, generic)
    assert assert_error(response, 400)["message"].startswith("field 'metadata.\\udc00'")
    payload = sample_body("phantombuster", enrollment_id)
    payload["resultObject"] = json.dumps([payload["resultObject"] | {"enrollmentId": "\ud800"}])
    response = await post_raw(client, "phantombuster", webhook_key, payload)
    message = assert_error(response, 400)["message"]
    assert message.startswith("field 'resultObject[0].enrollmentId' is not valid Unicode")
    await nothing_stored(engine)


async def test_a_surrogate_pair_is_just_a_character(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, webhook_key: str
) -> None:
    payload = sample_body("lemlist", enrollment_id) | {"campaignName": "Launch \ud83d\ude80"}
    response = await post_raw(client, "lemlist", webhook_key, payload)
    assert response.status_code == 200, response.text
    (row,) = await stored_events(engine)
    assert row["metadata"]["campaignName"] == "Launch \U0001f680"


async def test_record_event_with_provider_null_takes_the_default(
    client: httpx.AsyncClient, engine: AsyncEngine, enrollment_id: str, write_key: str
) -> None:
    """Found by the variables fuzz: an explicit null provider was an internal error."""
    variables = {"input": {"enrollmentId": enrollment_id, "eventType": "OPENED", "provider": None}}
    result = await gql(client, write_key, RECORD_EVENT, variables)
    assert "errors" not in result, result
    assert result["data"]["recordEvent"]["errors"] == []
    (row,) = await stored_events(engine)
    assert row["provider"] == "api"
