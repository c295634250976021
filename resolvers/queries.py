"""Root query resolvers: decode arguments, run one keyset query per connection."""

from __future__ import annotations

from typing import Any

from app.domain.enums import ErrorCode
from app.domain.errors import DomainError
from app.domain.keyset import page_request, parse_id
from resolvers.context import Context
from resolvers.errors import bad_arguments_as_graphql_errors, to_graphql_error
from resolvers.loaders import (
    EVENTS,
    INSTANCES,
    SUPPRESSIONS,
    TEMPLATES,
    Filters,
    RequestDatabase,
)
from resolvers.loaders.generic import Table, filter_sql, keyset_sql, to_page
from resolvers.loaders.sql import typed
from resolvers.pages import PageResult


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _root_page(
    db: RequestDatabase,
    table: Table,
    first: int | None,
    after: str | None,
    filters: Filters,
    extra_where: str = "",
    extra_params: dict[str, Any] | None = None,
) -> PageResult:
    with bad_arguments_as_graphql_errors():
        page = page_request(first, after)
    t = table
    where, params = filter_sql(t.alias, filters)
    where += extra_where
    params |= extra_params or {}
    cursor, order, keyset_params = keyset_sql(t, page)
    statement = typed(
        f"SELECT {t.columns} FROM {t.name} {t.alias} WHERE true{where}{cursor}{order} LIMIT :limit"
    )
    rows = await db.fetch(statement, params | keyset_params)
    count_statement = typed(f"SELECT count(*) AS n FROM {t.name} {t.alias} WHERE true{where}")

    async def count() -> int:
        return int((await db.fetch(count_statement, params))[0].n)

    return PageResult(to_page(rows, page, t.sort), count)


async def templates(
    context: Context,
    first: int | None,
    after: str | None,
    template_type: str | None,
    path_type: str | None,
    is_active: bool | None,
    search: str | None,
) -> PageResult:
    extra_where, extra_params = "", {}
    if search and "\x00" in search:
        raise to_graphql_error(
            DomainError(ErrorCode.INVALID, "search must not contain NUL characters", ("search",))
        )
    if search:
        extra_where = " AND t.name ILIKE :search ESCAPE '\\'"
        extra_params = {"search": f"%{_escape_like(search)}%"}
    filters: Filters = (("type", template_type), ("path_type", path_type), ("is_active", is_active))
    return await _root_page(
        context.loaders.db, TEMPLATES, first, after, filters, extra_where, extra_params
    )


async def instances(
    context: Context,
    first: int | None,
    after: str | None,
    status: str | None,
    template_id: str | None,
) -> PageResult:
    extra_where, extra_params = "", {}
    if template_id is not None:
        with bad_arguments_as_graphql_errors():
            extra_params = {"template_id": parse_id(template_id, "templateId")}
        extra_where = " AND i.template_id = CAST(:template_id AS uuid)"
    return await _root_page(
        context.loaders.db,
        INSTANCES,
        first,
        after,
        (("status", status),),
        extra_where,
        extra_params,
    )


async def orphaned_events(context: Context, first: int | None, after: str | None) -> PageResult:
    return await _root_page(
        context.loaders.db, EVENTS, first, after, (), " AND e.enrollment_id IS NULL"
    )


async def suppressions(
    context: Context, first: int | None, after: str | None, channel: str | None
) -> PageResult:
    return await _root_page(context.loaders.db, SUPPRESSIONS, first, after, (("channel", channel),))


async def by_id(context: Context, loader_name: str, raw_id: str) -> Any:
    with bad_arguments_as_graphql_errors():
        key = parse_id(raw_id)
    return await getattr(context.loaders, loader_name).load(key)
