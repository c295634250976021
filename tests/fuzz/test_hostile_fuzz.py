"""Property-based fuzzing of every string and time input with the values of issue 24.

Schemathesis puts its values into the GraphQL document, where the lexer refuses a lone
surrogate, so it never sends one where they get in: the variables. Here every place a root
field's arguments hold a String, ID, DateTime or JSON (58 of them) is a target: each case
aims one hostile value at one target (``hostile_text``, ``hostile_time``, ``hostile_json``)
and fills every other argument with a plausible value (seeded ids, valid times, short text),
so the hostile one gets past the other checks to where it could do harm. Each webhook format is
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
from tests.fuzz.harness import examples, run_fuzz
from tests.fuzz.strategies import (
    deep_text,
    hostile_json,
    hostile_object,
    hostile_text,
    hostile_time,
    spoiled,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
TIME_FIELDS = frozenset(
    {"occurred_at", "createdAt", "DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt", "timestamp"}
)


# ----------------------------------------------------------------------------- GraphQL

HOSTILE_SCALARS = frozenset({"String", "ID", "DateTime", "JSON"})
ArgumentPath = tuple[str | int, ...]


def _unwrap(type_: GraphQLInputType) -> tuple[GraphQLInputType, bool]:
    """(the type without NonNull, whether it was nullable)."""
    if isinstance(type_, GraphQLNonNull):
        return type_.of_type, False
    return type_, True


def leaves(type_: GraphQLInputType, path: ArgumentPath = ()) -> Iterator[tuple[ArgumentPath, str]]:
    """Every String, ID, DateTime and JSON position inside an argument of ``type_``."""
    inner, _ = _unwrap(type_)
    if isinstance(inner, GraphQLList):
        yield from leaves(inner.of_type, (*path, 0))
    elif isinstance(inner, GraphQLInputObjectType):
        for name, field in inner.fields.items():
            yield from leaves(field.type, (*path, name))
    elif not isinstance(inner, GraphQLEnumType) and inner.name in HOSTILE_SCALARS:
        yield path, inner.name


def hostile_variants(scalar: str, ids: tuple[str, ...], name: str) -> list[st.SearchStrategy[Any]]:
    """The classes of hostile value for a position, each given its own cases (in one
    ``one_of`` Hypothesis would draw some far more often than others)."""
    if scalar == "DateTime":
        return [hostile_time()]
    if scalar == "JSON":
        return [hostile_object(), hostile_json()]
    return [hostile_text(), spoiled(plausible_scalar(scalar, ids, name))]


ADDRESSES = ["fuzz@example.com", "https://www.linkedin.com/in/fuzz"]


def plausible_scalar(scalar: str, ids: tuple[str, ...], name: str) -> st.SearchStrategy[Any]:
    """Values that pass most checks, so the one hostile value gets as deep as it can (an
    address where the field ``name`` says one goes)."""
    if scalar == "String":
        return st.sampled_from(ADDRESSES if "address" in name.lower() else ["fuzz", *ADDRESSES])
    return {
        "ID": st.sampled_from(ids),
        "DateTime": st.sampled_from(["2025-11-09T13:00:00Z", "2025-11-09T14:00:00+02:00"]),
        "JSON": st.sampled_from([{}, {"email": ADDRESSES[0], "first_name": "Ada"}]),
        "Int": st.integers(1, 3),
        "Float": st.sampled_from([0.5, 1.0]),
    }.get(scalar, st.booleans())


@st.composite
def arguments(
    draw: st.DrawFn,
    type_: GraphQLInputType,
    ids: tuple[str, ...],
    target: ArgumentPath | None,
    hostile_value: Any,
    name: str = "",
) -> Any:
    """A plausible value of ``type_``, except at ``target`` (a path inside it, made present
    all the way down), where ``hostile_value`` goes."""
    if target == ():
        return hostile_value
    inner, nullable = _unwrap(type_)
    if target is None and nullable and draw(st.integers(0, 9)) == 0:
        return None
    if isinstance(inner, GraphQLList):
        rest = None if target is None else target[1:]
        items = [draw(arguments(inner.of_type, ids, rest, hostile_value, name))]
        if draw(st.booleans()):
            items.append(draw(arguments(inner.of_type, ids, None, None, name)))
        return items
    if isinstance(inner, GraphQLInputObjectType):
        value = {}
        for key, field in inner.fields.items():
            on_path = target is not None and target[0] == key
            required = isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
            if on_path or required or draw(st.integers(0, 2)) > 0:
                rest = target[1:] if on_path and target is not None else None
                value[key] = draw(arguments(field.type, ids, rest, hostile_value, key))
        return value
    if isinstance(inner, GraphQLEnumType):
        return draw(st.sampled_from(list(inner.values)))
    return draw(plausible_scalar(inner.name, ids, name))


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
    uses = ", ".join(f"{arg}: ${arg}" for arg in field.args)
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    return f"{kind}({definitions}) {{ {name}({uses}){selection} }}"


Target = tuple[str, GraphQLField, str, ArgumentPath, str]
TARGETS: list[Target] = [
    (document(kind, name, field), field, arg, path, scalar)
    for kind, name, field in operations()
    for arg, spec in field.args.items()
    for path, scalar in leaves(spec.type)
]
"""Every (operation, argument, position) where a string or a time goes: each case aims one
hostile value at one of them, every other argument plausible."""
PER_CASE = 10


@st.composite
def graphql_case(
    draw: st.DrawFn, target: Target, hostile: st.SearchStrategy[Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    """A request aiming a ``hostile`` value at ``target``, every other argument plausible."""
    query, field, target_arg, path, _ = target
    value = draw(hostile)
    variables = {
        arg: draw(arguments(spec.type, ids, path if arg == target_arg else None, value, arg))
        for arg, spec in field.args.items()
    }
    body: dict[str, Any] = {"query": query, "variables": variables}
    if draw(st.integers(0, 9)) == 0:  # the one string of a request outside the document
        body["operationName"] = draw(hostile_text(40))
    return body


def graphql_cases(ids: tuple[str, ...]) -> list[st.SearchStrategy[dict[str, Any]]]:
    cases = []
    for target in TARGETS:
        _, _, arg, path, scalar = target
        leaf = next((p for p in reversed((arg, *path)) if isinstance(p, str)), arg)
        for hostile in hostile_variants(scalar, ids, leaf):
            cases.append(graphql_case(target, hostile, ids))
    return cases


def test_every_graphql_string_and_time_argument(live_server: LiveServer) -> None:
    print(f"graphql variables: {len(TARGETS)} string and time positions")
    headers = {
        "authorization": f"Bearer {live_server.api_key}",
        "content-type": "application/json",
    }
    with httpx.Client(base_url=live_server.url, timeout=30) as http:

        def send(case: dict[str, Any]) -> httpx.Response:
            # ensure_ascii: a lone surrogate travels as the escape an attacker would send.
            return http.post("/graphql", content=json.dumps(case).encode(), headers=headers)

        # Each position and class in turn: its share of CAMPAIGN_FUZZ_EXAMPLES, at least PER_CASE.
        strategies = graphql_cases(live_server.ids)
        cases = max(examples() // len(strategies), PER_CASE)
        run_fuzz("graphql variables", strategies, send, cases)


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


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


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
            original = st.just(_get(payload, path))
            text = hostile_time() if name in TIME_FIELDS else hostile_text()
            _set(payload, path, draw(st.one_of(text, spoiled(original))))
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
