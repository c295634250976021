"""Relay's node and nodes: find which table holds each id, then load each type in one batch.

Ids are plain UUIDs (no type encoded in them), so the type of an id is the table that holds
it: one statement finds it for every id of the request (resolvers.loaders TableByIdLoader),
then the rows come from the same per-request by-id loaders every other field uses, one batch
per type present.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from app.domain.enums import ErrorCode, Scope
from app.domain.errors import DomainError
from app.domain.keyset import parse_id
from app.domain.limits import NODES_MAX
from resolvers.context import Context
from resolvers.errors import to_graphql_error
from resolvers.loaders import (
    DISPATCHES,
    EMAIL_STEPS,
    ENROLLMENTS,
    EVENTS,
    INSTANCES,
    LINKEDIN_STEPS,
    SUPPRESSIONS,
    TEMPLATES,
    Table,
)


@dataclass(frozen=True, slots=True)
class NodeSource:
    """Where one Node type's objects live, and the scope reading them needs."""

    type_name: str
    loader: str
    """The by-id loader (an attribute of Loaders) that reads its rows."""
    scope: Scope = Scope.READ


NODE_SOURCES: Mapping[Table, NodeSource] = {
    TEMPLATES: NodeSource("CampaignTemplate", "template_by_id"),
    EMAIL_STEPS: NodeSource("EmailStep", "email_step_by_id"),
    LINKEDIN_STEPS: NodeSource("LinkedInStep", "linkedin_step_by_id"),
    INSTANCES: NodeSource("CampaignInstance", "instance_by_id"),
    ENROLLMENTS: NodeSource("Enrollment", "enrollment_by_id"),
    EVENTS: NodeSource("CampaignEvent", "event_by_id"),
    DISPATCHES: NodeSource("Dispatch", "dispatch_by_id"),
    # The suppression list holds addresses: only admin keys read it (Query.suppressions).
    SUPPRESSIONS: NodeSource("Suppression", "suppression_by_id", Scope.ADMIN),
}
"""Every type that implements Node, by the table holding its rows (a test keeps it whole)."""
_TABLES = tuple(NODE_SOURCES)


@dataclass(frozen=True, slots=True)
class Found:
    """A row and the Node type it is (Node.resolve_type reads it); fields read the row."""

    type_name: str
    row: Any

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":  # graphql-core probes ``__await__``: a row never has one
            raise AttributeError(name)
        return getattr(self.row, name)


Resolved = Found | GraphQLError | None
"""What a node position becomes: the object, an error at that position, or null (unknown)."""


def _forbidden(scope: Scope) -> GraphQLError:
    """The error a field's missing scope gives (schema/permissions.py), for one position."""
    return GraphQLError(
        f"this API key lacks the '{scope.value}' scope", extensions={"code": "FORBIDDEN"}
    )


async def _resolve(context: Context, ids: Sequence[str | GraphQLError]) -> list[Resolved]:
    """Positions keep their order; a malformed id stays its error, an unknown one null."""
    valid = [key for key in ids if isinstance(key, str)]
    tables = await context.loaders.table_by_id(_TABLES).load_many(valid)
    table_of: dict[str, Table | None] = dict(zip(valid, tables, strict=True))
    by_source: dict[NodeSource, list[str]] = defaultdict(list)
    for key, table in table_of.items():
        source = None if table is None else NODE_SOURCES[table]
        if source is not None and context.principal.allows(source.scope):
            by_source[source].append(key)
    # Started together, so each loader sees all its keys in one batch: one statement per type.
    loaded = await asyncio.gather(
        *(getattr(context.loaders, s.loader).load_many(keys) for s, keys in by_source.items())
    )
    rows: dict[str, Found] = {
        key: Found(source.type_name, row)
        for (source, keys), batch in zip(by_source.items(), loaded, strict=True)
        for key, row in zip(keys, batch, strict=True)
        if row is not None  # deleted between the two statements: as if never there
    }
    result: list[Resolved] = []
    for key in ids:
        if isinstance(key, GraphQLError):
            result.append(key)
            continue
        table = table_of[key]
        source = None if table is None else NODE_SOURCES[table]
        if source is not None and not context.principal.allows(source.scope):
            result.append(_forbidden(source.scope))
        else:
            result.append(rows.get(key))
    return result


async def node(context: Context, raw_id: str) -> Found | None:
    """The object with this id; null when none has it; a malformed id is an INVALID error."""
    try:
        key = parse_id(raw_id)
    except DomainError as error:
        raise to_graphql_error(error) from None
    (resolved,) = await _resolve(context, [key])
    if isinstance(resolved, GraphQLError):
        raise resolved
    return resolved


async def nodes(context: Context, raw_ids: Sequence[str]) -> list[Resolved]:
    """The objects with these ids, in their order: null where no object has the id, an error
    (at that position only) where the id is malformed or the key may not read its type."""
    if len(raw_ids) > NODES_MAX:
        raise to_graphql_error(
            DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                f"'ids' takes at most {NODES_MAX} ids, got {len(raw_ids)}",
                ("ids",),
            )
        )
    ids: list[str | GraphQLError] = []
    for index, raw in enumerate(raw_ids):
        try:
            ids.append(parse_id(raw, "ids"))
        except DomainError as error:
            ids.append(
                to_graphql_error(DomainError(error.code, error.message, ("ids", str(index))))
            )
    return await _resolve(context, ids)
