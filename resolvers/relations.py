"""Nested relations: every one goes through a per-request DataLoader."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from app.domain.counters import INSTANCE_COUNTERS
from app.domain.keyset import PageRequest, page_request
from app.models.instances import counter_column
from app.services.analytics import Metrics
from resolvers.context import Context
from resolvers.errors import bad_arguments_as_graphql_errors
from resolvers.loaders import Filters, StepFigures
from resolvers.loaders.generic import CountByParentLoader, PageByParentLoader
from resolvers.pages import PageResult


@lru_cache(maxsize=256)
def _page(first: int | None, after: str | None) -> PageRequest:
    """Parsed once per distinct arguments: every parent of a nested page asks the same."""
    with bad_arguments_as_graphql_errors():
        return page_request(first, after)


async def child_page(
    page_loader: PageByParentLoader,
    count_loader: CountByParentLoader,
    parent_id: str,
    first: int | None,
    after: str | None,
    filters: Filters,
) -> PageResult:
    loaded = await page_loader.load((parent_id, _page(first, after), filters))

    async def count() -> int:
        return int(await count_loader.load((parent_id, filters)))

    return PageResult(loaded, count)


async def steps(context: Context, channel: str, template_id: str, include_inactive: bool) -> Any:
    loader = (
        context.loaders.email_steps_by_template_id
        if channel == "email"
        else context.loaders.linkedin_steps_by_template_id
    )
    filters: Filters = (("is_active", None if include_inactive else True),)
    return await loader.load((template_id, filters))


async def transitions(context: Context, instance_id: str) -> Any:
    return await context.loaders.transitions_by_instance_id.load((instance_id, ()))


async def step_figures(context: Context, instance_id: str, enrolled: int) -> list[StepFigures]:
    figures: list[StepFigures] = await context.loaders.step_figures_by_instance_id.load(
        (instance_id, enrolled)
    )
    return figures


async def counters(context: Context, instance: Any) -> Metrics:
    """Stored counters plus the increments still waiting in the instance's shards."""
    pending: Metrics = await context.loaders.shard_totals_by_instance_id.load(instance.id)
    stored = Metrics(**{c: getattr(instance, counter_column(c)) for c in INSTANCE_COUNTERS})
    return stored + pending
