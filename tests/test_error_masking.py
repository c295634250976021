"""An unexpected failure reaches the client as "Internal server error" with the request id;
the exception itself, with its SQL, goes only to the log. Introspection follows the mode."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.services import templates as template_service
from app.settings import Environment, Settings
from app.web.asgi import create_app
from resolvers.loaders.database import RequestDatabase
from resolvers.loaders.sql import typed
from tests.graphql_client import gql
from tests.leaks import leaks

BROKEN_TABLE = "no_such_table_for_masking"


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Straight to the app: the suite's ``client`` (tests/differential.py) reads each body
    whole and may run the request twice, which would hide that the app logs each failure once."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as direct:
        yield direct


def assert_masked(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200
    assert leaks(response.text) == []
    assert BROKEN_TABLE not in response.text
    [error] = response.json()["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": response.headers["x-request-id"],
    }
    return error  # type: ignore[no-any-return]


def assert_logged(caplog: pytest.LogCaptureFixture, request_id: str, detail: str) -> None:
    [record] = [r for r in caplog.records if r.name == "campaign_api"]
    assert record.levelno == logging.ERROR
    assert request_id in record.getMessage()
    assert record.exc_info is not None
    assert detail in str(record.exc_info[1])


async def test_a_failing_sql_statement_in_a_query_is_masked(
    client: httpx.AsyncClient,
    read_key: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database itself refuses a statement (a real driver error carrying the SQL)."""
    original = RequestDatabase.fetch

    async def broken_fetch(self: RequestDatabase, statement: Any, params: Any) -> Any:
        broken = typed(f"SELECT * FROM {BROKEN_TABLE}")
        return await original(self, broken, {})

    monkeypatch.setattr(RequestDatabase, "fetch", broken_fetch)
    response = await client.post(
        "/graphql",
        json={"query": "{ templates { totalCount } }"},
        headers={"authorization": f"Bearer {read_key}", "x-request-id": "trace-me-42"},
    )
    error = assert_masked(response)
    assert error["extensions"]["requestId"] == "trace-me-42"
    assert error["path"] == ["templates"]
    assert_logged(caplog, "trace-me-42", BROKEN_TABLE)


async def test_a_crashing_service_in_a_mutation_is_masked(
    client: httpx.AsyncClient,
    write_key: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("INSERT INTO campaign_templates failed in app.services.templates")

    monkeypatch.setattr(template_service, "create_template", crash)
    response = await client.post(
        "/graphql",
        json={
            "query": 'mutation { createTemplate(input: {name: "n", type: EMAIL,'
            " pathType: STRUCTURED}) { template { id } } }"
        },
        headers={"authorization": f"Bearer {write_key}"},
    )
    assert_masked(response)
    assert_logged(caplog, response.headers["x-request-id"], "INSERT INTO campaign_templates")


async def test_errors_the_service_raises_on_purpose_are_not_masked(
    client: httpx.AsyncClient, read_key: str
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": '{ template(id: "not-a-uuid") { id } }'},
        headers={"authorization": f"Bearer {read_key}"},
    )
    [error] = response.json()["errors"]
    assert error["message"] != "Internal server error"
    assert "not a valid id" in error["message"]


INTROSPECTION = "{ __schema { queryType { name } } }"


async def _client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.fixture(params=[None, False, True], ids=["default", "off", "on"])
async def production(
    request: pytest.FixtureRequest, settings: Settings, app: Starlette
) -> AsyncIterator[tuple[httpx.AsyncClient, bool]]:
    """A production app, CAMPAIGN_INTROSPECTION unset, false or true; and whether it is on."""
    introspection = request.param
    prod = settings.model_copy(
        update={"environment": Environment.PRODUCTION, "introspection": introspection}
    )
    assert prod.is_production
    async for client in _client_for(prod):
        yield client, bool(introspection)


async def test_production_turns_introspection_off_unless_asked(
    production: tuple[httpx.AsyncClient, bool], read_key: str
) -> None:
    client, expected_on = production
    headers = {"authorization": f"Bearer {read_key}"}
    for document in (INTROSPECTION, '{ __type(name: "Query") { name } }'):
        body = (await client.post("/graphql", json={"query": document}, headers=headers)).json()
        if expected_on:
            assert "errors" not in body, body
        else:
            assert body["data"] is None
            assert "introspection" in body["errors"][0]["message"].lower()
    body = (await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)).json()
    assert body == {"data": {"__typename": "Query"}}


async def test_development_serves_introspection(client: httpx.AsyncClient, read_key: str) -> None:
    body = (
        await client.post(
            "/graphql",
            json={"query": INTROSPECTION},
            headers={"authorization": f"Bearer {read_key}"},
        )
    ).json()
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_a_user_error_is_an_answer_not_a_logged_failure(
    client: httpx.AsyncClient, read_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad cursor is the client's mistake: answered with its message, and no error logged."""
    caplog.set_level(logging.DEBUG)
    body = await gql(client, read_key, '{ templates(after: "not-a-cursor") { totalCount } }')
    assert body["errors"][0]["extensions"]["code"] == "INVALID"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
