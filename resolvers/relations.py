"""Nested relations: every one goes through a per-request DataLoader."""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from typing import Any

from app.domain.counters import INSTANCE_COUNTERS
from app.domain.enums import InstanceStatus, TemplateType
from app.domain.keyset import PageRequest, page_request
from app.models.instances import counter_column
from app.providers.clients import can_send
from app.services.analytics import Metrics
from app.services.sending.operations import SendingFigures, waiting_on
from resolvers.context import Context
from resolvers.errors import bad_arguments_as_graphql_errors
from resolvers.loaders import ChildRelation, Filters, StepFigures
from resolvers.pages import PageResult


@lru_cache(maxsize=256)
def _page(first: int | None, after: str | None) -> PageRequest:
    """Parsed once per distinct arguments: every parent of a nested page asks the same."""
    with bad_arguments_as_graphql_errors():
        return page_request(first, after)


async def child_page(
    context: Context,
    relation: ChildRelation,
    parent_id: str,
    first: int | None,
    after: str | None,
    **filters: Enum | None,
) -> PageResult:
    """What a nested connection field returns: a page of the parent's children and their
    total, counted only if asked. ``filters`` are enum arguments named after the column they
    match; None matches any value. The loaders are read from the context at each call: a
    retry of the request replaces them."""
    pages = context.loaders.children(relation)
    by_column: Filters = tuple(
        (column, None if value is None else value.value) for column, value in filters.items()
    )
    loaded = await pages.page.load((parent_id, _page(first, after), by_column))

    async def count() -> int:
        return int(await pages.count.load((parent_id, by_column)))

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


async def dispatches(context: Context, enrollment_id: str) -> Any:
    return await context.loaders.dispatches_by_enrollment_id.load((enrollment_id, ()))


async def sending(context: Context, instance: Any) -> tuple[SendingFigures, list[str]]:
    """The instance's sending figures, and why its due touches wait when they do."""
    figures: SendingFigures = await context.loaders.sending_by_instance_id.load(instance.id)
    template = await context.loaders.template_by_id.load(instance.template_id)
    reasons = waiting_on(
        InstanceStatus(instance.status),
        instance.provider_config,
        TemplateType(template.type),
        lambda provider: can_send(context.settings, provider),
    )
    return figures, reasons
