"""Text that is not valid Unicode (a lone surrogate, JSON's ``"\\ud800"``) or holds NUL never
reaches PostgreSQL from GraphQL (issue 24, item 4: in ``filter.search`` it came back as
INTERNAL_SERVER_ERROR). A query's variable is refused before the query runs, with
``extensions.code = "INVALID"`` naming the variable's path; a mutation answers with a payload
error naming the input field, as for any other invalid input."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.cli.seed import seed_id
from tests.webhooks.helpers import count_rows

QUERIES: list[tuple[str, str, dict[str, Any], list[str]]] = [
    # (the variable's path as the message writes it, document, variables, extensions.field)
    (
        "filter.search",
        "query($filter: TemplateFilter) { templates(filter: $filter) { totalCount } }",
        {"filter": {"search": "x\ud800"}},
        ["filter", "search"],
    ),
    (
        "f.templateId",
        "query($f: InstanceFilter) { instances(filter: $f) { totalCount } }",
        {"f": {"templateId": "\udfff"}},
        ["f", "templateId"],
    ),
    (
        "after",
        "query($after: String) { orphanedEvents(after: $after) { totalCount } }",
        {"after": "\ud83d"},
        ["after"],
    ),
]


async def post(client: httpx.AsyncClient, key: str, query: str, variables: Any) -> httpx.Response:
    """JSON with non-ASCII escaped: the surrogate travels as the escape a client can send."""
    return await client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )


@pytest.mark.parametrize(("where", "query", "variables", "field"), QUERIES)
async def test_a_lone_surrogate_in_a_query_variable_is_an_error_naming_it(
    seeded: Starlette,
    direct_client: httpx.AsyncClient,
    read_key: str,
    where: str,
    query: str,
    variables: dict[str, Any],
    field: list[str],
) -> None:
    response = await post(direct_client, read_key, query, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": field}
    assert error["message"].startswith(f"variable ${where} is not valid Unicode"), error
    assert "U+D" in error["message"]


async def test_a_surrogate_pair_searches_like_any_character(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = "query($filter: TemplateFilter) { templates(filter: $filter) { totalCount } }"
    response = await post(client, read_key, query, {"filter": {"search": "\ud83d\ude80"}})
    assert response.json() == {"data": {"templates": {"totalCount": 0}}}


MUTATIONS: list[tuple[str, str, dict[str, Any], list[str]]] = [
    # (id, document, variables, the payload error's field)
    (
        "bulkEnroll contactId",
        "mutation($i: ID!, $contacts: [EnrollContactInput!]!) { bulkEnroll(instanceId: $i,"
        " contacts: $contacts) { errors { field code } } }",
        {
            "i": str(seed_id("instance:tech-q4")),
            "contacts": [{"contactId": "fine"}, {"contactId": "c-\ud83d"}],
        },
        ["contacts", "1", "contactId"],
    ),
    (
        "recordEvent metadata key",
        "mutation($input: RecordEventInput!) { recordEvent(input: $input) {"
        " errors { field code } } }",
        {
            "input": {
                "enrollmentId": str(seed_id("enrollment:grace")),
                "eventType": "OPENED",
                "metadata": {"note": {"\udc00": 1}},
            }
        },
        ["input", "metadata"],
    ),
    (
        "addSuppression surrogate",
        "mutation($input: AddSuppressionInput!) { addSuppression(input: $input) {"
        " errors { field code } } }",
        {"input": {"address": "\ud800@example.com"}},
        ["input", "address"],
    ),
    (
        "addSuppression NUL",
        "mutation($input: AddSuppressionInput!) { addSuppression(input: $input) {"
        " errors { field code } } }",
        {"input": {"address": "a\x00b@example.com"}},
        ["input", "address"],
    ),
    (
        "removeSuppression surrogate",
        "mutation($a: String!) { removeSuppression(address: $a) { errors { field code } } }",
        {"a": "\udbff@example.com"},
        ["address"],
    ),
]


@pytest.mark.parametrize(
    ("document", "variables", "field"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
async def test_bad_text_in_a_mutation_is_a_payload_error_naming_the_field(
    seeded: Starlette,
    direct_client: httpx.AsyncClient,
    admin_key: str,
    document: str,
    variables: dict[str, Any],
    field: list[str],
) -> None:
    engine = seeded.state.engine
    before = {t: await count_rows(engine, t) for t in ("campaign_events", "suppressions")}
    response = await post(direct_client, admin_key, document, variables)
    body = response.json()
    assert "errors" not in body, body
    [payload] = body["data"].values()
    assert payload["errors"] == [{"field": field, "code": "INVALID"}]
    assert {t: await count_rows(engine, t) for t in before} == before


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
