"""The /graphql request body: size (413), media type (415) and shape (400), as JSON errors.

A key that may write gets room for the largest bulkEnroll; others keep the query limit."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette

from app.domain.limits import BULK_ENROLL_MAX, CONTACT_ID_MAX, JSON_MAX_BYTES
from app.settings import Settings
from tests.lifecycle.helpers import (
    BULK_ENROLL_COUNTS,
    create_template,
    engine_of,
    enrollment_rows,
    instance_in,
)

CHUNK = 64 * 1024


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Straight to the app: the suite's ``client`` (tests/differential.py) reads each body
    whole and may run the request twice, which would hide how the app reads a body."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as direct:
        yield direct


def auth(key: str, content_type: str | None = "application/json") -> dict[str, str]:
    headers = {"authorization": f"Bearer {key}"}
    if content_type is not None:
        headers["content-type"] = content_type
    return headers


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert body["message"]
    return body


def exactly(size: int) -> bytes:
    """A valid GraphQL request body of exactly ``size`` bytes (padded in an unused variable)."""
    empty = json.dumps({"query": "{ __typename }", "variables": {"pad": ""}}).encode()
    return json.dumps(
        {"query": "{ __typename }", "variables": {"pad": "x" * (size - len(empty))}}
    ).encode()


async def test_a_body_of_exactly_the_limit_is_served_and_one_byte_more_is_413(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    limit = app.state.settings.graphql_max_bytes
    at_limit, over = exactly(limit), exactly(limit + 1)
    assert (len(at_limit), len(over)) == (limit, limit + 1)
    response = await client.post("/graphql", content=at_limit, headers=auth(read_key))
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}
    response = await client.post("/graphql", content=over, headers=auth(read_key))
    body = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert str(limit) in body["message"]


class CountingBody:
    """A streamed body that records how much of it the server pulled."""

    def __init__(self, total: int) -> None:
        self.total, self.pulled = total, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += CHUNK
            yield b" " * CHUNK


async def test_a_declared_length_over_the_limit_is_413_before_reading(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    limit = app.state.settings.graphql_max_bytes
    body = CountingBody(100 * limit)
    headers = auth(read_key) | {"content-length": str(100 * limit)}
    response = await client.post("/graphql", content=body, headers=headers)
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert body.pulled == 0


async def test_an_absurd_declared_length_is_413(client: httpx.AsyncClient, read_key: str) -> None:
    headers = auth(read_key) | {"content-length": "9" * 5_000}
    response = await client.post("/graphql", content=b"{}", headers=headers)
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_a_declared_length_that_is_not_ascii_digits_is_ignored(
    client: httpx.AsyncClient, read_key: str
) -> None:
    """The body is then read and measured as if no length had been declared."""
    headers: dict[str, Any] = auth(read_key) | {"content-length": "\u00b2".encode("latin-1")}
    response = await client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers=headers
    )
    assert response.status_code == 200, response.text


async def test_an_undeclared_length_is_read_only_up_to_the_limit(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """A chunked 100 MB body is refused once the limit is passed, not read to the end."""
    limit = app.state.settings.graphql_max_bytes
    body = CountingBody(100 * 1024 * 1024)
    response = await client.post("/graphql", content=body, headers=auth(read_key))
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert body.pulled <= limit + CHUNK


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/graphql", "multipart/form-data"]
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, read_key: str, content_type: str | None
) -> None:
    response = await client.post(
        "/graphql", content=b"{ __typename }", headers=auth(read_key, content_type)
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_json_with_a_charset_is_accepted(client: httpx.AsyncClient, read_key: str) -> None:
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers=auth(read_key, "application/json; charset=utf-8"),
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"query": ', "MALFORMED_JSON"),
        (b"\xff\xfe not utf-8", "MALFORMED_JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "MALFORMED_JSON"),
        (b"", "MALFORMED_JSON"),
        (b'[{"query": "{ __typename }"}]', "INVALID_REQUEST"),
        (b'"{ __typename }"', "INVALID_REQUEST"),
        (b"{}", "INVALID_REQUEST"),
        (b'{"query": 5}', "INVALID_REQUEST"),
        (b'{"query": "  "}', "INVALID_REQUEST"),
        (b'{"query": "{ __typename }", "variables": [1]}', "INVALID_REQUEST"),
        (b'{"query": "{ __typename }", "operationName": 3}', "INVALID_REQUEST"),
        (b'{"query": "{ __typename }", "extensions": "x"}', "INVALID_REQUEST"),
        (b'{"query": "query A { __typename }", "operationName": "B"}', "INVALID_REQUEST"),
    ],
)
async def test_a_malformed_request_is_400_as_json(
    client: httpx.AsyncClient, read_key: str, body: bytes, code: str
) -> None:
    response = await client.post("/graphql", content=body, headers=auth(read_key))
    assert_error(response, 400, code)


async def test_authentication_comes_before_the_body(client: httpx.AsyncClient) -> None:
    """Without a key nothing of the request is read: 401 whatever the body."""
    response = await client.post("/graphql", content=b"not json", headers={"content-type": "x"})
    assert_error(response, 401, "UNAUTHENTICATED")


def realistic_contacts(count: int) -> list[dict[str, Any]]:
    """What a CRM export carries for each contact: e-mail, LinkedIn URL, name and company."""
    return [
        {
            "contactId": f"crm-{n:06d}",
            "metadata": {
                "email": f"firstname.lastname{n}@example-company.com",
                "linkedin_url": f"https://www.linkedin.com/in/firstname-lastname-{n:06d}",
                "first_name": "Firstname",
                "last_name": "Lastname",
                "company": f"Example Company {n % 97} International Ltd",
            },
        }
        for n in range(count)
    ]


async def test_the_largest_bulk_enroll_of_realistic_contacts_is_accepted(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """10,000 contacts with the fields a CRM sends pass 1 MB: a key that may write can send
    them, in one request, as the API invites."""
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 0)])
    instance_id = await instance_in(client, write_key, engine, template_id, "draft")
    variables = {"instanceId": instance_id, "contacts": realistic_contacts(BULK_ENROLL_MAX)}
    body = json.dumps({"query": BULK_ENROLL_COUNTS, "variables": variables}).encode()
    assert len(body) > 2 * app.state.settings.graphql_max_bytes
    response = await client.post("/graphql", content=body, headers=auth(write_key))
    assert response.status_code == 200, response.text[:300]
    result = response.json()["data"]["bulkEnroll"]
    assert (result["enrolledCount"], result["errors"]) == (BULK_ENROLL_MAX, [])
    assert len(await enrollment_rows(engine, instance_id)) == BULK_ENROLL_MAX


async def test_a_key_that_cannot_write_keeps_the_query_limit(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """Only writes take large inputs: a read-only key's body stops at the query limit."""
    over = exactly(app.state.settings.graphql_max_bytes + 1)
    response = await client.post("/graphql", content=over, headers=auth(read_key))
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_the_write_limit_admits_the_largest_contact_list_the_api_accepts() -> None:
    """The largest contacts bulkEnroll stores: the longest contactId (in 4-byte characters)
    and metadata exactly as large as the service measures its limit, compact JSON."""
    filler = "x" * JSON_MAX_BYTES
    overhead = len(json.dumps({"notes": ""}, ensure_ascii=False).encode())
    metadata = {"notes": filler[: JSON_MAX_BYTES - overhead]}
    assert len(json.dumps(metadata, ensure_ascii=False).encode()) == JSON_MAX_BYTES
    contact = {"contactId": "\U0001f600" * CONTACT_ID_MAX, "metadata": metadata}

    def size(contacts: int) -> int:
        request = {"query": BULK_ENROLL_COUNTS, "variables": {"instanceId": str(uuid.uuid4())}}
        request["variables"]["contacts"] = [contact] * contacts  # type: ignore[index]
        return len(json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode())

    largest = size(1) + (BULK_ENROLL_MAX - 1) * (size(2) - size(1))
    settings = Settings.model_construct()
    assert settings.graphql_body_limit(can_write=True) >= largest
    assert settings.graphql_body_limit(can_write=False) == settings.graphql_max_bytes
    capped = Settings(graphql_write_max_bytes=2 * 1024 * 1024)
    assert capped.graphql_body_limit(can_write=True) == 2 * 1024 * 1024
    with pytest.raises(ValidationError):
        Settings(graphql_max_bytes=4096, graphql_write_max_bytes=2048)
