"""The fast path's contract: same statements, automatic fallback with a reason, bounded plans."""

from __future__ import annotations

import asyncio
import gc
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette

from app.observability.sql_observer import recording
from resolvers.context import Context
from resolvers.fast_execution import executor as fast_executor
from resolvers.fast_execution import on_fallback
from resolvers.fast_execution.executor import is_awaitable, stop_fallback_listener
from resolvers.fast_execution.plan import PlanCache
from tests.differential import DifferentialApp
from tests.graphql_client import gql
from tests.test_statement_counts import DASHBOARD

INSTANCE_DETAIL = """query Detail($id: ID!) { instance(id: $id) { id name status
  metrics { enrolled sent opened } performance { rates { openRate } byStep { stepNumber } }
  transitions { toStatus at } enrollments(first: 5) { totalCount
    nodes { contactId events(first: 3) { nodes { eventType occurredAt } } } } } }"""


@pytest.fixture
def fallbacks() -> Iterator[list[str]]:
    reasons: list[str] = []
    on_fallback(reasons.append)
    yield reasons
    stop_fallback_listener(reasons.append)


@pytest.fixture
def compilations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every plan compiled while the test runs (the cache is emptied first)."""
    compiled: list[Any] = []
    original = fast_executor.compile_query

    def counting(*args: Any) -> Any:
        compiled.append(args[3])
        return original(*args)

    monkeypatch.setattr(fast_executor, "PLANS", PlanCache())
    monkeypatch.setattr(fast_executor, "compile_query", counting)
    return compiled


async def _instance_id(client: httpx.AsyncClient, key: str) -> str:
    body = await gql(client, key, "{ instances(first: 1) { nodes { id } } }")
    return str(body["data"]["instances"]["nodes"][0]["id"])


async def test_both_paths_run_the_same_statements(
    seeded: Starlette, reference_app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    instance_id = await _instance_id(client, read_key)
    for query, variables in ((DASHBOARD, None), (INSTANCE_DETAIL, {"id": instance_id})):
        with recording(seeded.state.engine) as fast:
            fast_body = await gql(client, read_key, query, variables)
        reference = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=reference_app), base_url="http://reference"
        )
        async with reference:
            with recording(reference_app.state.engine) as standard:
                standard_body = await gql(reference, read_key, query, variables)
        assert "errors" not in fast_body
        assert fast_body == standard_body
        assert len(fast) == len(standard), (fast, standard)


async def test_what_a_query_loaded_goes_with_its_answer(
    seeded: Starlette, direct_client: httpx.AsyncClient, read_key: str
) -> None:
    """No reference cycle holds a request's context (its loaders, rows, futures) once the
    answer is sent: freed by reference counting, not left to a full collection. (The query
    runs once, on the fast path: the standard executor, for mutations, still makes the cycle.)"""
    await gql(direct_client, read_key, DASHBOARD)  # plans and caches made before counting
    gc.collect()
    gc.disable()
    try:
        body = await gql(direct_client, read_key, DASHBOARD)
        left = [o for o in gc.get_objects() if isinstance(o, Context)]
    finally:
        gc.enable()
    assert body["data"]["templates"]["nodes"]
    assert left == []


async def test_a_clean_query_stays_on_the_fast_path(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str, fallbacks: list[str]
) -> None:
    body = await gql(client, read_key, DASHBOARD)
    assert body["data"]["templates"]["nodes"]
    assert fallbacks == []


async def test_an_error_falls_back_and_says_why(
    seeded: Starlette,
    client: httpx.AsyncClient,
    read_key: str,
    fallbacks: list[str],
    differential: DifferentialApp,
) -> None:
    counted = ("campaign_graphql_fastpath_fallbacks_total", {"reason": "field error"})
    before = REGISTRY.get_sample_value(*counted) or 0.0
    body = await gql(client, read_key, '{ templates(after: "nope") { nodes { id } } }')
    assert body["errors"][0]["path"] == ["templates"]
    assert fallbacks == ["field error"]
    assert REGISTRY.get_sample_value(*counted) == before + 1  # the metric operators watch
    assert differential.compared == 1


async def test_introspection_and_permission_failures_fall_back(
    seeded: Starlette, client: httpx.AsyncClient, write_key: str, fallbacks: list[str]
) -> None:
    from app.domain.enums import Scope
    from app.security.api_keys import create_api_key

    async with seeded.state.sessionmaker.begin() as session:
        no_read = await create_api_key(session, "no-read", frozenset({Scope.WEBHOOKS}))
    introspection = await gql(client, write_key, "{ __schema { queryType { name } } }")
    assert introspection["data"]["__schema"]["queryType"]["name"] == "Query"
    refused = await gql(client, no_read, "{ templates { totalCount } }")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert fallbacks == ["introspection", "field error"]


async def test_mutations_take_the_standard_path_without_counting_as_fallbacks(
    app: Starlette, client: httpx.AsyncClient, write_key: str, fallbacks: list[str]
) -> None:
    body = await gql(
        client,
        write_key,
        'mutation { createTemplate(input: {name: "Fast", type: EMAIL, pathType: STRUCTURED})'
        " { template { id name } errors { code } } }",
    )
    assert body["data"]["createTemplate"]["template"]["name"] == "Fast"
    assert fallbacks == []


async def test_a_plan_is_compiled_once_per_document_and_directive_values(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str, compilations: list[Any]
) -> None:
    query = (
        "query Q($withName: Boolean!) { templates { nodes { id name @include(if: $withName) } } }"
    )
    with_name = await gql(client, read_key, query, {"withName": True})
    again = await gql(client, read_key, query, {"withName": True})
    without_name = await gql(client, read_key, query, {"withName": False})
    assert with_name == again
    assert "name" in with_name["data"]["templates"]["nodes"][0]
    assert "name" not in without_name["data"]["templates"]["nodes"][0]
    assert len(compilations) == 2  # one per value of the directive's variable


async def test_the_setting_turns_the_fast_path_off(
    reference_app: Starlette, read_key: str, compilations: list[Any]
) -> None:
    transport = httpx.ASGITransport(app=reference_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reference") as reference:
        body = await gql(reference, read_key, "{ templates { totalCount } }")
    assert body == {"data": {"templates": {"totalCount": 0}}}
    assert compilations == []


def test_the_plan_cache_is_bounded() -> None:
    cache = PlanCache(size=2)
    made: list[str] = []

    def compile_for(key: str) -> Any:
        made.append(key)
        return (key,)

    for key in ("a", "b", "a", "c", "b"):
        assert cache.get_or_compile(key, lambda key=key: compile_for(key)) == (key,)
    assert made == ["a", "b", "c", "b"]  # "a" was used again, so "b" was the one to go


async def test_awaitables_are_told_apart_by_type() -> None:
    """What ``await`` accepts, and nothing else: rows, lists and None are plain values."""

    async def native() -> int:
        return 1

    @types.coroutine
    def generator_based() -> Any:
        yield

    def plain_generator() -> Any:
        yield

    coroutine = native()
    future = asyncio.get_running_loop().create_future()
    old_style = generator_based()
    assert is_awaitable(coroutine)
    assert is_awaitable(future)
    assert is_awaitable(old_style)
    assert not is_awaitable(plain_generator())
    assert not any(is_awaitable(v) for v in (None, 1, "x", [coroutine], {"a": 1}))
    await coroutine
    future.cancel()
    old_style.close()


NODES = """query Nodes($ids: [ID!]!, $first: ID!) { nodes(ids: $ids) { __typename id
  ... on CampaignTemplate { name emailSteps { stepNumber } }
  ... on CampaignInstance { status metrics { enrolled } enrollments(first: 2) { totalCount } }
  ...Contact } first: node(id: $first) { id ... on CampaignTemplate { type } } }
  fragment Contact on Enrollment { contactId instance { name }
    events(first: 1) { nodes { id } } }"""


async def test_node_and_nodes_stay_on_the_fast_path(
    seeded: Starlette,
    reference_app: Starlette,
    client: httpx.AsyncClient,
    read_key: str,
    fallbacks: list[str],
) -> None:
    """Node is an interface: each value's plan is its runtime type's, chosen as graphql-core
    chooses it; the answer and the statements are the standard path's."""
    listing = await gql(
        client,
        read_key,
        "{ templates(first: 2) { nodes { id instances(first: 2) { nodes { id"
        " enrollments(first: 2) { nodes { id } } } } } } }",
    )
    templates = listing["data"]["templates"]["nodes"]
    instances = [i for t in templates for i in t["instances"]["nodes"]]
    enrollments = [n for i in instances for n in i["enrollments"]["nodes"]]
    ids = [enrollments[0]["id"], "00000000-0000-4000-8000-000000000000", templates[0]["id"]]
    ids += [instances[0]["id"], enrollments[0]["id"]]
    variables = {"ids": ids, "first": templates[1]["id"]}
    with recording(seeded.state.engine) as fast:
        fast_body = await gql(client, read_key, NODES, variables)
    reference = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=reference_app), base_url="http://reference"
    )
    async with reference:
        with recording(reference_app.state.engine) as standard:
            standard_body = await gql(reference, read_key, NODES, variables)
    assert "errors" not in fast_body
    assert fast_body == standard_body
    assert [n and n["__typename"] for n in fast_body["data"]["nodes"]] == [
        "Enrollment",
        None,
        "CampaignTemplate",
        "CampaignInstance",
        "Enrollment",
    ]
    assert len(fast) == len(standard), (fast, standard)
    assert fallbacks == []
    # An error at one position (a malformed id) is the standard path's to report.
    errored = await gql(client, read_key, NODES, {"ids": ["nope"], "first": ids[0]})
    assert errored["errors"][0]["path"] == ["nodes", 0]
    assert fallbacks == ["field error"]
