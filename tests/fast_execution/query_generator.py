"""Random read queries over the schema, for comparing the fast path with the standard one.

Deterministic for a seed. Queries mix what a frontend sends and what it gets wrong: aliases,
named and inline fragments, variables (some in @skip/@include), ``__typename``, real and
unknown ids, malformed ids and cursors, filters, page sizes around the limits, and interfaces
(``node``, ``nodes``) with fragments on some of their types.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLType,
    is_leaf_type,
)


def _named(t: GraphQLType) -> Any:
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


@dataclass
class GeneratedQuery:
    query: str
    variables: dict[str, Any]


@dataclass
class _Build:
    rng: random.Random
    ids: dict[str, list[str]]
    cursors: list[str]
    variables: dict[str, Any] = field(default_factory=dict)
    definitions: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)

    def variable(self, type_text: str, value: Any) -> str:
        name = f"v{len(self.variables)}"
        self.variables[name] = value
        self.definitions.append(f"${name}: {type_text}")
        return f"${name}"


class QueryGenerator:
    def __init__(
        self, schema: GraphQLSchema, ids: dict[str, list[str]], cursors: list[str]
    ) -> None:
        self.schema = schema
        self.ids = ids
        self.cursors = cursors

    def generate(self, seed: int) -> GeneratedQuery:
        build = _Build(random.Random(seed), self.ids, self.cursors)
        query_type = self.schema.query_type
        assert query_type is not None
        body = self.selection(build, query_type, depth=0)
        header = "query Generated"  # one name: metrics keep a bounded set of operation names
        if build.definitions:
            header += f"({', '.join(build.definitions)})"
        text = f"{header} {body}"
        if build.fragments:
            text += "\n" + "\n".join(build.fragments)
        return GeneratedQuery(text, build.variables)

    def selection(self, build: _Build, object_type: GraphQLObjectType, depth: int) -> str:
        rng = build.rng
        fields = list(object_type.fields.items())
        if depth > 0:
            fields = [f for f in fields if depth < 4 or is_leaf_type(_named(f[1].type))]
        if not fields:
            return "{ __typename }"
        chosen = rng.sample(fields, k=min(len(fields), rng.randint(1, 4)))
        parts = [self.field(build, name, definition, depth) for name, definition in chosen]
        if rng.random() < 0.2:
            parts.append("__typename")
        if rng.random() < 0.15:
            name, definition = rng.choice(fields)
            index = len(build.fragments)
            build.fragments.append("")  # the name is taken before nested fragments take theirs
            inner = self.field(build, name, definition, depth, alias=f"fr{index}_{name}")
            build.fragments[index] = f"fragment F{index} on {object_type.name} {{ {inner} }}"
            parts.append(f"...F{index}")
        if rng.random() < 0.1:
            name, definition = rng.choice(fields)
            inner = self.field(build, name, definition, depth, alias=f"in{depth}_{name}")
            parts.append(f"... on {object_type.name} {{ {inner} }}")
        return "{ " + " ".join(parts) + " }"

    def field(
        self,
        build: _Build,
        name: str,
        definition: GraphQLField,
        depth: int,
        alias: str | None = None,
    ) -> str:
        """A field; fragments alias theirs, so they never conflict with a sibling's arguments."""
        rng = build.rng
        text = name
        if alias is not None:
            text = f"{alias}: {name}"
        elif rng.random() < 0.25:
            text = f"a{rng.randint(0, 9)}_{name}: {name}"
        arguments = [
            a for a in (self.argument(build, n, arg) for n, arg in definition.args.items()) if a
        ]
        if arguments:
            text += f"({', '.join(arguments)})"
        if rng.random() < 0.08:
            flag = build.variable("Boolean!", rng.random() < 0.5)
            text += f" @{rng.choice(['skip', 'include'])}(if: {flag})"
        target = _named(definition.type)
        if isinstance(target, GraphQLObjectType):
            text += " " + self.selection(build, target, depth + 1)
        elif isinstance(target, GraphQLInterfaceType):
            text += " " + self.abstract_selection(build, target, depth + 1)
        return text

    def abstract_selection(self, build: _Build, interface: GraphQLInterfaceType, depth: int) -> str:
        """The interface's own fields, and inline fragments on a few of its types."""
        rng = build.rng
        parts = [self.field(build, n, d, depth) for n, d in interface.fields.items()]
        if rng.random() < 0.3:
            parts.append("__typename")
        possible = list(self.schema.get_possible_types(interface))
        for object_type in rng.sample(possible, k=rng.randint(0, min(3, len(possible)))):
            parts.append(f"... on {object_type.name} {self.selection(build, object_type, depth)}")
        return "{ " + " ".join(parts) + " }"

    def argument(self, build: _Build, name: str, argument: GraphQLArgument) -> str | None:
        rng = build.rng
        required = isinstance(argument.type, GraphQLNonNull)
        if not required and rng.random() < 0.5:
            return None
        value, type_text = self.value(build, name, argument.type)
        if value is _OMIT:
            return None
        if rng.random() < 0.3:
            return f"{name}: {build.variable(type_text, value)}"
        return f"{name}: {_literal(value, _named(argument.type))}"

    @staticmethod
    def some_id(build: _Build) -> str:
        kind = build.rng.choice(list(build.ids))
        pool = build.ids[kind] + ["00000000-0000-4000-8000-000000000000", "not-a-uuid"]
        return build.rng.choice(pool)

    def value(self, build: _Build, name: str, t: GraphQLType) -> tuple[Any, str]:
        rng = build.rng
        named = _named(t)
        type_text = str(t)
        if name == "first":
            return rng.choice([0, 1, 2, 3, 5, 20, 100, 101, -1, None]), type_text
        if name == "after":
            return rng.choice([*build.cursors, "not-a-cursor", None]), type_text
        if name == "id":
            return self.some_id(build), type_text
        if name == "ids":
            return [self.some_id(build) for _ in range(rng.randint(0, 4))], type_text
        if isinstance(named, GraphQLEnumType):
            return rng.choice([*named.values, None]), type_text
        if isinstance(named, GraphQLInputObjectType):
            fields = {
                key: self.value(build, key, f.type)[0]
                for key, f in named.fields.items()
                if rng.random() < 0.5
            }
            return {k: v for k, v in fields.items() if v is not _OMIT}, type_text
        if named.name == "Boolean":
            return rng.choice([True, False, None]), type_text
        if named.name == "String":
            return rng.choice(["", "demo", "welcome", None]), type_text
        return _OMIT, type_text


_OMIT = object()


def _literal(value: Any, named: Any) -> str:
    if value is None:
        return "null"
    if isinstance(named, GraphQLEnumType) and isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = named.fields if isinstance(named, GraphQLInputObjectType) else {}
        items = ", ".join(
            f"{k}: {_literal(v, _named(inner[k].type) if k in inner else None)}"
            for k, v in value.items()
        )
        return "{" + items + "}"
    return json.dumps(value)
