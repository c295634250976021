"""Property-based fuzzing of every string and time input with the values of issue 24.

Schemathesis puts its values into the GraphQL document, where the lexer refuses a lone
surrogate, so it never sends one where they get in: the variables. Here each root field of
the schema (queries and mutations) is called with variables drawn for its argument types:
every String and ID from ``hostile_text`` (ids of seeded rows too, to get past "not found"),
every DateTime from ``hostile_time``, every JSON from ``hostile_json``. Each webhook format is
fuzzed from the provider fixtures, with every string field replaced by hostile text and every
time field by a hostile time, PhantomBuster's rows also arriving as JSON text. No answer may
be a 5xx, a masked internal error, or a body with a stack trace or SQL (harness.run_fuzz).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    Undefined,
    get_named_type,
    is_leaf_type,
)
from hypothesis import strategies as st

from schema import build_schema
from schema.build import graphql_core_schema
from tests.fuzz.conftest import LiveServer
from tests.fuzz.harness import run_fuzz
from tests.fuzz.strategies import (
    deep_text,
    hostile_json,
    hostile_object,
    hostile_text,
    hostile_time,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
TIME_FIELDS = frozenset(
    {"occurred_at", "createdAt", "DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt", "timestamp"}
)


# ----------------------------------------------------------------------------- GraphQL


def _scalar(name: str, ids: tuple[str, ...]) -> st.SearchStrategy[Any]:
    if name == "ID":
        return st.one_of(st.sampled_from(ids), st.uuids().map(str), hostile_text(60))
    if name == "DateTime":
        return hostile_time()
    if name == "JSON":
        return st.one_of(hostile_object(), hostile_json())
    if name == "Int":
        return st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 2**31 - 1]))
    if name == "Float":
        return st.floats(allow_nan=False, allow_infinity=False)
    if name == "Boolean":
        return st.booleans()
    return hostile_text()


def variable_values(type_: GraphQLInputType, ids: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Values of ``type_`` (its shape honoured, so the hostile leaves get past validation)."""
    nullable = not isinstance(type_, GraphQLNonNull)
    inner = type_ if nullable else type_.of_type
    values: st.SearchStrategy[Any]
    if isinstance(inner, GraphQLList):
        values = st.lists(variable_values(inner.of_type, ids), max_size=3)
    elif isinstance(inner, GraphQLInputObjectType):
        required, optional = {}, {}
        for name, field in inner.fields.items():
            strategy = variable_values(field.type, ids)
            needed = isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
            (required if needed else optional)[name] = strategy
        values = st.fixed_dictionaries(required, optional=optional)
    elif isinstance(inner, GraphQLEnumType):
        values = st.sampled_from(list(inner.values))
    else:
        values = _scalar(inner.name, ids)
    return st.one_of(st.none(), values) if nullable else values


def operations() -> Iterator[tuple[str, str, GraphQLField]]:
    """(kind, name, field) of every root field that takes arguments."""
    schema = graphql_core_schema(build_schema())
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert isinstance(root, GraphQLObjectType)
        for name, field in root.fields.items():
            if field.args:
                yield kind, name, field


def document(kind: str, name: str, field: GraphQLField) -> str:
    definitions = ", ".join(f"${arg}: {spec.type}" for arg, spec in field.args.items())
    arguments = ", ".join(f"{arg}: ${arg}" for arg in field.args)
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    return f"{kind}({definitions}) {{ {name}({arguments}){selection} }}"


def graphql_cases(ids: tuple[str, ...]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.one_of(
        *(
            st.tuples(
                st.just(document(kind, name, field)),
                st.fixed_dictionaries(
                    {arg: variable_values(spec.type, ids) for arg, spec in field.args.items()}
                ),
            )
            for kind, name, field in operations()
        )
    )


def test_every_graphql_string_and_time_argument(live_server: LiveServer) -> None:
    headers = {
        "authorization": f"Bearer {live_server.api_key}",
        "content-type": "application/json",
    }
    with httpx.Client(base_url=live_server.url, timeout=30) as http:

        def send(case: tuple[str, dict[str, Any]]) -> httpx.Response:
            query, variables = case
            # ensure_ascii: a lone surrogate travels as the escape an attacker would send.
            body = json.dumps({"query": query, "variables": variables}).encode()
            return http.post("/graphql", content=body, headers=headers)

        run_fuzz("graphql variables", graphql_cases(live_server.ids), send)


# ----------------------------------------------------------------------------- webhooks


def _fixtures(provider: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((FIXTURES / provider).glob("*.json"))]


GENERIC = {
    "enrollment_id": "5d2b1c7e-3f0a-4c1e-9d2b-7a8e6f5c4b3a",
    "event_type": "sent",
    "occurred_at": "2025-11-09T13:00:00Z",
    "channel": "email",
    "provider": "api",
    "provider_event_id": "evt-1",
    "step_number": 1,
    "metadata": {"client": "Gmail"},
}
SAMPLES = {
    "events": [GENERIC, {"events": [GENERIC, GENERIC | {"event_type": "opened"}]}],
    "lemlist": _fixtures("lemlist"),
    "postmark": _fixtures("postmark"),
    "phantombuster": _fixtures("phantombuster"),
}
ENROLLMENT_FIELDS = frozenset({"enrollment_id", "enrollmentId"})


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from _string_paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _string_paths(child, (*path, index))


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for part in path[:-1]:
        value = value[part]
    value[path[-1]] = new


@st.composite
def webhook_case(draw: st.DrawFn, enrollment_ids: tuple[str, ...]) -> tuple[str, Any]:
    """A provider fixture with each of its strings kept, pointed at a seeded enrollment, or
    replaced by a hostile value (a time for a time field), plus hostile extras."""
    endpoint = draw(st.sampled_from(sorted(SAMPLES)))
    payload = copy.deepcopy(draw(st.sampled_from(SAMPLES[endpoint])))
    for path in list(_string_paths(payload)):
        name = next((p for p in reversed(path) if isinstance(p, str)), "")
        choice = draw(st.sampled_from(["keep", "keep", "hostile"]))
        if name in ENROLLMENT_FIELDS and choice == "keep":
            _set(payload, path, draw(st.sampled_from(enrollment_ids)))
        elif choice == "hostile":
            _set(payload, path, draw(hostile_time() if name in TIME_FIELDS else hostile_text()))
    if isinstance(payload, dict) and draw(st.booleans()):
        payload[draw(hostile_text(20))] = draw(hostile_json())
    if endpoint == "phantombuster" and isinstance(payload, dict):
        rows = payload.get("resultObject")
        form = draw(st.sampled_from(["as is", "text", "deep text"]))
        if form == "text" and not isinstance(rows, str):
            payload["resultObject"] = json.dumps(rows)
        elif form == "deep text":
            payload["resultObject"] = draw(deep_text())
    return endpoint, payload


def test_every_webhook_string_and_time_field(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:

        def send(case: tuple[str, Any]) -> httpx.Response:
            endpoint, payload = case
            path = f"/webhooks/{endpoint}"
            headers, params = live_server.credentials(path)
            response = http.post(
                path,
                content=json.dumps(payload).encode(),
                headers=headers | {"content-type": "application/json"},
                params=params,
            )
            if response.status_code != 200:
                assert set(response.json()) == {"error", "message"}, response.text
            return response

        run_fuzz("webhook formats", webhook_case(live_server.enrollment_ids), send)
