"""Per-request DataLoaders for every relation the contract exposes (created in get_context)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from resolvers.loaders import sql
from resolvers.loaders.counters import ShardTotalsByInstanceLoader
from resolvers.loaders.database import RequestDatabase
from resolvers.loaders.generic import (
    ByIdLoader,
    CountByParentLoader,
    Filters,
    ListByParentLoader,
    Page,
    PageByParentLoader,
    Table,
    TableByIdLoader,
)
from resolvers.loaders.performance import StepFigures, StepFiguresByInstanceLoader
from resolvers.loaders.sending import SendingByInstanceLoader

TEMPLATES = Table("campaign_templates", "t", sql.TEMPLATE)
EMAIL_STEPS = Table("email_steps", "s", sql.EMAIL_STEP)
LINKEDIN_STEPS = Table("linkedin_steps", "s", sql.LINKEDIN_STEP)
INSTANCES = Table("campaign_instances", "i", sql.INSTANCE)
ENROLLMENTS = Table("enrollments", "n", sql.ENROLLMENT)
EVENTS = Table("campaign_events", "e", sql.EVENT, sort="occurred_at")
TRANSITIONS = Table("instance_transitions", "x", sql.TRANSITION)
DISPATCHES = Table("dispatches", "d", sql.DISPATCH)
SUPPRESSIONS = Table("suppressions", "p", sql.SUPPRESSION)

ChildRelation = Literal[
    "instances_by_template_id",
    "enrollments_by_instance_id",
    "events_by_instance_id",
    "events_by_enrollment_id",
]
"""The relations a nested connection field pages: children by their parent's id."""

_CHILDREN: dict[ChildRelation, tuple[Table, str]] = {
    "instances_by_template_id": (INSTANCES, "template_id"),
    "enrollments_by_instance_id": (ENROLLMENTS, "instance_id"),
    "events_by_instance_id": (EVENTS, "instance_id"),
    "events_by_enrollment_id": (EVENTS, "enrollment_id"),
}


@dataclass(frozen=True, slots=True)
class ChildPages:
    """A relation's two loaders: a connection field asks for a page and, lazily, the total."""

    page: PageByParentLoader
    count: CountByParentLoader


class Loaders:
    """Built lazily: a request pays only for the loaders its query touches."""

    def __init__(self, db: RequestDatabase) -> None:
        self.db = db
        self._children: dict[ChildRelation, ChildPages] = {}
        self._tables_by_id: dict[tuple[Table, ...], TableByIdLoader] = {}

    def children(self, relation: ChildRelation) -> ChildPages:
        """The page and count loaders of ``relation``, made on the first field that pages it."""
        try:
            return self._children[relation]
        except KeyError:
            table, parent = _CHILDREN[relation]
            pages = ChildPages(
                PageByParentLoader(self.db, table, parent),
                CountByParentLoader(self.db, table, parent),
            )
            self._children[relation] = pages
            return pages

    def table_by_id(self, tables: tuple[Table, ...]) -> TableByIdLoader:
        """Which of ``tables`` holds each id: one loader per request and set of tables."""
        try:
            return self._tables_by_id[tables]
        except KeyError:
            loader = self._tables_by_id[tables] = TableByIdLoader(self.db, tables)
            return loader

    @cached_property
    def template_by_id(self) -> ByIdLoader:
        return ByIdLoader(self.db, TEMPLATES)

    @cached_property
    def instance_by_id(self) -> ByIdLoader:
        return ByIdLoader(self.db, INSTANCES)

    @cached_property
    def enrollment_by_id(self) -> ByIdLoader:
        return ByIdLoader(self.db, ENROLLMENTS)

    @cached_property
    def event_by_id(self) -> ByIdLoader:
        return ByIdLoader(self.db, EVENTS)

    @cached_property
    def email_step_by_id(self) -> ByIdLoader:
        return ByIdLoader(self.db, EMAIL_STEPS)

    @cached_property
    def linkedin_step_by_id(self) -> ByIdLoader:
        return ByIdLoader(self.db, LINKEDIN_STEPS)

    @cached_property
    def email_steps_by_template_id(self) -> ListByParentLoader:
        return ListByParentLoader(self.db, EMAIL_STEPS, "template_id", "s.step_number, s.id")

    @cached_property
    def linkedin_steps_by_template_id(self) -> ListByParentLoader:
        return ListByParentLoader(self.db, LINKEDIN_STEPS, "template_id", "s.step_number, s.id")

    @cached_property
    def dispatch_by_id(self) -> ByIdLoader:
        return ByIdLoader(self.db, DISPATCHES)

    @cached_property
    def suppression_by_id(self) -> ByIdLoader:
        return ByIdLoader(self.db, SUPPRESSIONS)

    @cached_property
    def dispatches_by_enrollment_id(self) -> ListByParentLoader:
        return ListByParentLoader(
            self.db, DISPATCHES, "enrollment_id", "d.step_number, d.channel, d.id"
        )

    @cached_property
    def sending_by_instance_id(self) -> SendingByInstanceLoader:
        return SendingByInstanceLoader(self.db)

    @cached_property
    def transitions_by_instance_id(self) -> ListByParentLoader:
        return ListByParentLoader(self.db, TRANSITIONS, "instance_id", "x.at, x.id")

    @cached_property
    def shard_totals_by_instance_id(self) -> ShardTotalsByInstanceLoader:
        return ShardTotalsByInstanceLoader(self.db)

    @cached_property
    def step_figures_by_instance_id(self) -> StepFiguresByInstanceLoader:
        return StepFiguresByInstanceLoader(self.db)


__all__ = [
    "ChildPages",
    "ChildRelation",
    "Filters",
    "Loaders",
    "Page",
    "RequestDatabase",
    "StepFigures",
    "Table",
]
