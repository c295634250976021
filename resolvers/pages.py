"""A page of rows plus a lazy total, handed to the schema's Connection type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from resolvers.loaders import Page


@dataclass(frozen=True, slots=True)
class PageResult:
    page: Page
    count: Callable[[], Awaitable[int]]
    """Runs only when the client selects ``totalCount``."""
