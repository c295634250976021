"""The fast path's short routes for leaf values answer what the scalar's coercion answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLLeafType, GraphQLScalarType

from resolvers.fast_execution.plan import Leaf, leaf, leaf_coercer
from schema import build_schema
from schema.build import graphql_core_schema

SCHEMA = graphql_core_schema(build_schema())
LEAF_TYPES = sorted(
    (
        t
        for name, t in SCHEMA.type_map.items()
        if isinstance(t, GraphQLScalarType | GraphQLEnumType) and not name.startswith("__")
    ),
    key=lambda t: t.name,
)
SAMPLES: list[Any] = [
    "",
    "sent",
    "SENT",
    "caf\u00e9",
    0,
    -1,
    2**31,
    True,
    False,
    1.5,
    float("nan"),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 1, 2),
    date(2026, 1, 2),
    {"a": [1, None]},
    [1, "x"],
]


def route(entry: Leaf, value: Any) -> Any:
    """The executor's branches for one non-null leaf value (executor.execute_object)."""
    if type(value) is entry.exact:
        return value if entry.convert is None else entry.convert(value)
    return entry.coerce(value)


def outcome(answer: Any, value: Any) -> tuple[Any, ...]:
    """The answer and its type (True == 1), or the kind of error coercion raised."""
    try:
        result = answer(value)
    except Exception as error:  # GraphQLError, TypeError, the fast path's Bail...
        return ("error", type(error))
    return ("answer", type(result), result)


def samples_for(leaf_type: GraphQLLeafType) -> list[Any]:
    """The common samples, and for an enum its values as the database gives them."""
    if not isinstance(leaf_type, GraphQLEnumType):
        return SAMPLES
    values = [v.value for v in leaf_type.values.values()]
    return SAMPLES + values + [getattr(v, "value", v) for v in values]


@pytest.mark.parametrize("leaf_type", LEAF_TYPES, ids=lambda t: t.name)
def test_each_route_answers_what_coercion_answers(leaf_type: GraphQLLeafType) -> None:
    coerce = leaf_coercer(leaf_type)
    entry = leaf("key", leaf_type, coerce, non_null=True)
    for value in samples_for(leaf_type):
        expected = outcome(coerce, value)
        # Twice: an enum's route remembers its answers, and must not remember a refusal.
        assert outcome(lambda v: route(entry, v), value) == expected, value
        assert outcome(lambda v: route(entry, v), value) == expected, value


def test_the_short_routes_are_taken() -> None:
    """Strings, booleans, datetimes and enums read as strings skip the coercion call."""
    routes = {t.name: leaf("key", t, leaf_coercer(t), non_null=False) for t in LEAF_TYPES}
    assert routes["String"].exact is routes["ID"].exact is str
    assert routes["Boolean"].exact is bool
    assert routes["DateTime"].exact is datetime
    assert routes["DateTime"].convert is datetime.isoformat
    enums = [t.name for t in LEAF_TYPES if isinstance(t, GraphQLEnumType)]
    assert enums
    assert all(routes[name].exact is str and routes[name].convert for name in enums)
