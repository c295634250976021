"""Depth, alias, token and cost limits: exactly at the limit runs, one over is refused.

The limits are checked after authentication (a 401 costs no parsing), so a refused request
runs exactly one statement, the API-key lookup, and none of the GraphQL execution: the tests
count every statement on the app's engine during the request and exclude only that lookup.
Each test runs its documents on the default application, whose limits are the defaults.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql.language.parser import Parser
from starlette.applications import Starlette

from app.observability.sql_observer import recording
from schema.extensions.limits import exceeds_token_limit

LIMIT_CODE = "QUERY_TOO_COMPLEX"


async def post(
    app: Starlette, client: httpx.AsyncClient, key: str, query: str, variables: Any = None
) -> tuple[dict[str, Any], list[str]]:
    """The response body and the statements the request ran, the key lookup left out."""
    with recording(app.state.engine) as statements:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200, response.text
    return response.json(), [s for s in statements if "FROM api_keys" not in s]


def assert_runs(body: dict[str, Any], statements: list[str]) -> None:
    assert "errors" not in body, body
    assert statements, "an accepted query reads the database"


def assert_refused(
    body: dict[str, Any], statements: list[str], limit: str, message: str
) -> dict[str, Any]:
    assert statements == []
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["message"].startswith(message), error["message"]
    assert error["extensions"]["code"] == LIMIT_CODE
    assert error["extensions"]["limit"] == limit
    return error  # type: ignore[no-any-return]


CYCLE = ("instances(first: 1)", "nodes", "template")


def selection(path: list[str]) -> str:
    return " { ".join(path) + " { __typename" + " }" * len(path)


def nested(depth: int, template_id: str) -> str:
    """A document exactly ``depth`` fields deep: template → instances → nodes → template …"""
    path = [f'template(id: "{template_id}")'] + [CYCLE[i % 3] for i in range(depth - 2)]
    return "{ " + selection(path) + " }"


async def test_depth_at_the_limit_runs_and_one_more_is_refused(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    limit = seeded.state.settings.max_query_depth
    template_id = await first_template_id(seeded, client, read_key)
    body, statements = await post(seeded, client, read_key, nested(limit, template_id))
    assert_runs(body, statements)
    body, statements = await post(seeded, client, read_key, nested(limit + 1, template_id))
    error = assert_refused(body, statements, "depth", f"depth {limit + 1} exceeds {limit}")
    assert error["extensions"]["value"] == limit + 1


async def test_depth_counts_through_fragments(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    limit = seeded.state.settings.max_query_depth
    template_id = await first_template_id(seeded, client, read_key)
    inside = [CYCLE[i % 3] for i in range(limit + 1 - 2)]
    document = (
        f"fragment Deep on CampaignTemplate {{ {selection(inside)} }}\n"
        f'{{ template(id: "{template_id}") {{ ...Deep }} }}'
    )
    body, statements = await post(seeded, client, read_key, document)
    assert_refused(body, statements, "depth", f"depth {limit + 1} exceeds {limit}")


def aliased(count: int) -> str:
    return (
        "{ " + " ".join(f"t{n}: templates(first: 1) {{ totalCount }}" for n in range(count)) + " }"
    )


async def test_aliases_at_the_limit_run_and_one_more_is_refused(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    limit = seeded.state.settings.max_aliases
    body, statements = await post(seeded, client, read_key, aliased(limit))
    assert_runs(body, statements)
    assert len(body["data"]) == limit
    body, statements = await post(seeded, client, read_key, aliased(limit + 1))
    assert_refused(body, statements, "aliases", f"aliases {limit + 1} exceeds {limit}")


def token_count(document: str) -> int:
    parser = Parser(document, no_location=True)
    parser.parse_document()
    return parser.token_count


def padded(tokens: int) -> str:
    """A document of exactly ``tokens`` tokens: a query padded with comments, which count.

    (Padding with repeated fields would trip graphql-core's own guard against overlapping
    fields long before 5,000 tokens.)"""
    query = "{ templates(first: 1) { nodes { id name } } }"
    return query + "\n# padding" * (tokens - token_count(query))


async def test_tokens_at_the_limit_run_and_one_more_is_refused(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    limit = seeded.state.settings.max_tokens
    at_limit, over = padded(limit), padded(limit + 1)
    assert (token_count(at_limit), token_count(over)) == (limit, limit + 1)
    body, statements = await post(seeded, client, read_key, at_limit)
    assert_runs(body, statements)
    body, statements = await post(seeded, client, read_key, over)
    assert_refused(body, statements, "tokens", f"token count exceeds {limit}")


@pytest.mark.parametrize(
    ("document", "limit", "exceeds"),
    [
        ("{ a b c d }", 6, False),
        ("{ a b c d }", 5, True),  # the parser stops at the sixth token
        ("{ a" + " # c\n" * 10 + "}", 5, True),  # its lexer stops inside the comments
        ("{ a ? }", 2, False),  # a bad character before the limit
        ("{ a", 100, False),  # an unfinished document
        ('"s" { a b c d }', 1, False),  # refused at its first token, though longer
    ],
)
def test_the_token_limit_is_told_apart_from_other_syntax_errors(
    document: str, limit: int, exceeds: bool
) -> None:
    assert exceeds_token_limit(document, limit) is exceeds


COST_QUERY = """query Cost($a: Int, $b: Int, $c: Int, $extra: Int) {
  templates(first: $a) { nodes { instances(first: $b) { nodes {
    enrollments(first: $c) { nodes { id } } } } } }
  orphanedEvents(first: $extra) { pageInfo { hasNextPage } } }"""


def split_cost(limit: int) -> dict[str, int]:
    """Page sizes (each ≤ 100, the largest page) whose cost a + ab + abc + extra is ``limit``."""
    for a in range(100, 0, -1):
        for b in range(100, 0, -1):
            c = min(100, (limit - a - a * b) // (a * b)) if limit >= a + a * b else -1
            extra = limit - (a + a * b + a * b * max(c, 0))
            if c >= 0 and 0 <= extra <= 100:
                return {"a": a, "b": b, "c": c, "extra": extra}
    raise AssertionError(f"no page sizes give {limit}")


async def test_cost_at_the_limit_runs_and_one_more_is_refused(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    limit = seeded.state.settings.max_query_cost
    sizes = split_cost(limit)
    assert sizes["a"] + sizes["a"] * sizes["b"] * (1 + sizes["c"]) + sizes["extra"] == limit
    body, statements = await post(seeded, client, read_key, COST_QUERY, sizes)
    assert_runs(body, statements)
    over = sizes | {"extra": sizes["extra"] + 1}
    body, statements = await post(seeded, client, read_key, COST_QUERY, over)
    error = assert_refused(body, statements, "cost", f"cost {limit + 1} exceeds {limit}")
    assert (error["extensions"]["value"], error["extensions"]["maximum"]) == (limit + 1, limit)


async def test_a_large_inline_first_is_refused_before_any_sql(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    limit = seeded.state.settings.max_query_cost
    document = """{ templates(first: 100) { nodes { instances(first: 100) { nodes {
        enrollments(first: 100) { nodes { id } } } } } } }"""
    body, statements = await post(seeded, client, read_key, document)
    cost = 100 + 100 * 100 + 100 * 100 * 100
    assert_refused(body, statements, "cost", f"cost {cost} exceeds {limit}")


@pytest.mark.parametrize("limit", ["depth", "aliases"])
async def test_the_refusal_is_cached_with_the_validation(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str, limit: str
) -> None:
    """The validation cache must keep the verdict, not let a repeated document through."""
    settings = seeded.state.settings
    document = (
        nested(settings.max_query_depth + 1, "00000000-0000-0000-0000-000000000000")
        if limit == "depth"
        else aliased(settings.max_aliases + 1)
    )
    for _ in range(2):
        body, statements = await post(seeded, client, read_key, document)
        assert statements == []
        assert [e["extensions"]["limit"] for e in body["errors"]] == [limit]


async def first_template_id(app: Starlette, client: httpx.AsyncClient, key: str) -> str:
    body, _ = await post(app, client, key, "{ templates(first: 1) { nodes { id } } }")
    template_id: str = body["data"]["templates"]["nodes"][0]["id"]
    return template_id
