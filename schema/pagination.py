"""Relay-style keyset connections: edges, nodes, pageInfo and a lazily counted totalCount."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import strawberry

from app.domain.keyset import encode_cursor
from resolvers.pages import PageResult

NodeType = TypeVar("NodeType")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeType]):
    cursor: str
    node: NodeType


@strawberry.type
class Connection(Generic[NodeType]):
    result: strawberry.Private[PageResult]

    def _cursor(self, row: Any) -> str:
        return encode_cursor(getattr(row, self.result.page.sort), row.id)

    @strawberry.field
    def edges(self) -> list[Edge[NodeType]]:
        return [Edge(cursor=self._cursor(row), node=row) for row in self.result.page.rows]

    @strawberry.field
    def nodes(self) -> list[NodeType]:
        return list(self.result.page.rows)

    @strawberry.field
    def page_info(self) -> PageInfo:
        page = self.result.page
        return PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=self._cursor(page.rows[0]) if page.rows else None,
            end_cursor=self._cursor(page.rows[-1]) if page.rows else None,
        )

    @strawberry.field(description="The size of the whole filtered list.")
    async def total_count(self) -> int:
        return await self.result.count()
