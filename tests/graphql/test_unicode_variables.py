"""A lone surrogate (JSON's ``"\\ud800"``) in any variable is a GraphQL error with
``extensions.code = "INVALID"`` naming the variable's path, before anything runs (issue 24,
item 4: in ``filter.search`` it reached PostgreSQL and came back INTERNAL_SERVER_ERROR)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.cli.seed import seed_id
from tests.webhooks.helpers import count_rows

CASES: list[tuple[str, str, dict[str, Any], list[str]]] = [
    # (the variable's path as the message writes it, document, variables, extensions.field)
    (
        "filter.search",
        "query($filter: TemplateFilter) { templates(filter: $filter) { totalCount } }",
        {"filter": {"search": "x\ud800"}},
        ["filter", "search"],
    ),
    (
        "input.name",
        "mutation($input: CreateTemplateInput!) { createTemplate(input: $input) {"
        " template { id } errors { field } } }",
        {"input": {"name": "\udfff", "type": "EMAIL"}},
        ["input", "name"],
    ),
    (
        "contacts[1].contactId",
        "mutation($i: ID!, $contacts: [EnrollContactInput!]!) { bulkEnroll(instanceId: $i,"
        " contacts: $contacts) { enrollments { id } } }",
        {
            "i": str(seed_id("instance:tech-q4")),
            "contacts": [{"contactId": "fine"}, {"contactId": "c-\ud83d"}],
        },
        ["contacts", "1", "contactId"],
    ),
    (
        "input.metadata.note.\\udc00",
        "mutation($input: RecordEventInput!) { recordEvent(input: $input) { duplicate } }",
        {
            "input": {
                "enrollmentId": str(seed_id("enrollment:grace")),
                "eventType": "OPENED",
                "metadata": {"note": {"\udc00": 1}},
            }
        },
        ["input", "metadata", "note", "\\udc00"],
    ),
    (
        "a",
        "mutation($a: String!) { removeSuppression(address: $a) { removed } }",
        {"a": "\ud800@example.com"},
        ["a"],
    ),
]


async def post(client: httpx.AsyncClient, key: str, query: str, variables: Any) -> httpx.Response:
    """JSON with non-ASCII escaped: the surrogate travels as the escape a client can send."""
    return await client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )


@pytest.mark.parametrize(("where", "query", "variables", "field"), CASES)
async def test_a_lone_surrogate_in_a_variable_is_an_error_naming_it(
    seeded: Starlette,
    direct_client: httpx.AsyncClient,
    admin_key: str,
    where: str,
    query: str,
    variables: dict[str, Any],
    field: list[str],
) -> None:
    events, templates = (
        await count_rows(seeded.state.engine, "campaign_events"),
        await count_rows(seeded.state.engine, "campaign_templates"),
    )
    response = await post(direct_client, admin_key, query, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": field}
    assert error["message"].startswith(f"variable ${where} is not valid Unicode"), error
    assert "U+D" in error["message"]
    assert await count_rows(seeded.state.engine, "campaign_events") == events
    assert await count_rows(seeded.state.engine, "campaign_templates") == templates


async def test_a_surrogate_pair_searches_like_any_character(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = "query($filter: TemplateFilter) { templates(filter: $filter) { totalCount } }"
    response = await post(client, read_key, query, {"filter": {"search": "\ud83d\ude80"}})
    assert response.json() == {"data": {"templates": {"totalCount": 0}}}


async def test_a_lone_surrogate_in_the_operation_name_is_a_400(
    app: Starlette, direct_client: httpx.AsyncClient, admin_key: str
) -> None:
    """Strawberry echoes an unknown operation name back: this one could not be sent."""
    response = await direct_client.post(
        "/graphql",
        content=json.dumps({"query": "query A { __typename }", "operationName": "\ud800"}).encode(),
        headers={"authorization": f"Bearer {admin_key}", "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "INVALID_REQUEST"
    assert body["message"].startswith("'operationName' is not valid Unicode")
