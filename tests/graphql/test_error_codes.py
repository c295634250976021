"""Every GraphQL error has ``extensions.code``; with introspection off, no "Did you mean".

Each case is a mistake a newcomer makes in the first hour (a typo, a missing variable) or a
probe of the schema; the suggestions graphql-core adds would name fields, arguments, types and
enum values to someone who may not list them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.settings import Settings
from app.web.asgi import create_app
from tests.graphql_client import gql


@pytest.fixture
async def closed(settings: Settings, app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same service with introspection off (as in production)."""
    application = create_app(settings.model_copy(update={"introspection": False}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def errors(
    client: httpx.AsyncClient, key: str, query: str, variables: Any = None, **extra: Any
) -> list[dict[str, Any]]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables, **extra},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None, body
    found: list[dict[str, Any]] = body["errors"]
    assert found
    return found


VALIDATION = "GRAPHQL_VALIDATION_FAILED"

# name -> (document, variables, the code)
MISTAKES: dict[str, tuple[str, Any, str]] = {
    "syntax error": ("{ templates { nodes { id }", None, "GRAPHQL_PARSE_FAILED"),
    "unknown field": ("{ templatez { totalCount } }", None, VALIDATION),
    "unknown argument": ("{ templates(frist: 2) { nodes { id } } }", None, VALIDATION),
    "wrong enum literal": (
        "{ templates(filter: {type: EMAL}) { totalCount } }",
        None,
        VALIDATION,
    ),
    "unknown type": (
        "query($f: TemplateFiltr) { templates(filter: $f) { totalCount } }",
        None,
        VALIDATION,
    ),
    "missing variable": ("query($id: ID!) { template(id: $id) { id } }", None, "BAD_USER_INPUT"),
    "wrong enum variable": (
        "query($f: TemplateFilter) { templates(filter: $f) { totalCount } }",
        {"f": {"type": "EMAL"}},
        "BAD_USER_INPUT",
    ),
    "unknown input field": (
        "query($f: TemplateFilter) { templates(filter: $f) { totalCount } }",
        {"f": {"serach": "x"}},
        "BAD_USER_INPUT",
    ),
    "two operations, no name": (
        "query A { templates { totalCount } } query B { instances { totalCount } }",
        None,
        "OPERATION_RESOLUTION_FAILURE",
    ),
}


async def test_every_error_has_a_code(client: httpx.AsyncClient, read_key: str) -> None:
    for mistake, (document, variables, code) in MISTAKES.items():
        for error in await errors(client, read_key, document, variables):
            assert error["extensions"]["code"] == code, (mistake, error)


async def test_with_introspection_off_errors_suggest_nothing(
    client: httpx.AsyncClient, closed: httpx.AsyncClient, read_key: str
) -> None:
    """The same errors, coded the same, their message cut before the suggestion only."""
    suggested = 0
    for mistake, (document, variables, code) in MISTAKES.items():
        served = await errors(client, read_key, document, variables)
        hidden = await errors(closed, read_key, document, variables)
        assert len(hidden) == len(served), mistake
        for open_error, closed_error in zip(served, hidden, strict=True):
            assert "Did you mean" not in closed_error["message"], (mistake, closed_error)
            assert closed_error["extensions"]["code"] == code
            head, _, suggestion = open_error["message"].partition(" Did you mean")
            suggested += bool(suggestion)
            assert closed_error["message"].startswith(head.removesuffix(".")), mistake
    assert suggested >= 5  # unknown field, argument, type, enum values, input field


async def test_suggestions_are_what_introspection_off_hides(
    client: httpx.AsyncClient, closed: httpx.AsyncClient, read_key: str
) -> None:
    """With introspection on, a typo still gets its suggestion."""
    [error] = await errors(client, read_key, "{ templatez { totalCount } }")
    assert "Did you mean 'template' or 'templates'?" in error["message"]
    [error] = await errors(closed, read_key, "{ templatez { totalCount } }")
    assert error["message"] == "Cannot query field 'templatez' on type 'Query'."


async def test_introspection_disabled_has_its_code(
    closed: httpx.AsyncClient, read_key: str
) -> None:
    for document in ("{ __schema { queryType { name } } }", '{ __type(name: "Query") { name } }'):
        for error in await errors(closed, read_key, document):
            assert error["extensions"] == {"code": "INTROSPECTION_DISABLED"}, error
            assert "introspection" in error["message"].lower()


async def test_field_and_limit_errors_keep_their_own_codes(
    client: httpx.AsyncClient, read_key: str
) -> None:
    body = await gql(client, read_key, '{ templates(after: "not-a-cursor") { totalCount } }')
    assert body["errors"][0]["extensions"]["code"] == "INVALID"
    deep = '{ template(id: "x") { ' + "instances { nodes { template { " * 5 + "id" + " } } }" * 5
    [error] = await errors(client, read_key, deep + " } }")
    assert (error["extensions"]["code"], error["extensions"]["limit"]) == (
        "QUERY_TOO_COMPLEX",
        "depth",
    )
