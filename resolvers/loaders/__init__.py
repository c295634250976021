"""Per-request DataLoaders for every relation the contract exposes (created in get_context)."""

from __future__ import annotations

from functools import cached_property

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
)
from resolvers.loaders.performance import StepFigures, StepFiguresByInstanceLoader

TEMPLATES = Table("campaign_templates", "t", sql.TEMPLATE)
EMAIL_STEPS = Table("email_steps", "s", sql.EMAIL_STEP)
LINKEDIN_STEPS = Table("linkedin_steps", "s", sql.LINKEDIN_STEP)
INSTANCES = Table("campaign_instances", "i", sql.INSTANCE)
ENROLLMENTS = Table("enrollments", "n", sql.ENROLLMENT)
EVENTS = Table("campaign_events", "e", sql.EVENT, sort="occurred_at")
TRANSITIONS = Table("instance_transitions", "x", sql.TRANSITION)


class Loaders:
    """Built lazily: a request pays only for the loaders its query touches."""

    def __init__(self, db: RequestDatabase) -> None:
        self.db = db

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
    def transitions_by_instance_id(self) -> ListByParentLoader:
        return ListByParentLoader(self.db, TRANSITIONS, "instance_id", "x.at, x.id")

    @cached_property
    def instance_page_by_template_id(self) -> PageByParentLoader:
        return PageByParentLoader(self.db, INSTANCES, "template_id")

    @cached_property
    def instance_count_by_template_id(self) -> CountByParentLoader:
        return CountByParentLoader(self.db, INSTANCES, "template_id")

    @cached_property
    def enrollment_page_by_instance_id(self) -> PageByParentLoader:
        return PageByParentLoader(self.db, ENROLLMENTS, "instance_id")

    @cached_property
    def enrollment_count_by_instance_id(self) -> CountByParentLoader:
        return CountByParentLoader(self.db, ENROLLMENTS, "instance_id")

    @cached_property
    def event_page_by_instance_id(self) -> PageByParentLoader:
        return PageByParentLoader(self.db, EVENTS, "instance_id")

    @cached_property
    def event_count_by_instance_id(self) -> CountByParentLoader:
        return CountByParentLoader(self.db, EVENTS, "instance_id")

    @cached_property
    def event_page_by_enrollment_id(self) -> PageByParentLoader:
        return PageByParentLoader(self.db, EVENTS, "enrollment_id")

    @cached_property
    def event_count_by_enrollment_id(self) -> CountByParentLoader:
        return CountByParentLoader(self.db, EVENTS, "enrollment_id")

    @cached_property
    def shard_totals_by_instance_id(self) -> ShardTotalsByInstanceLoader:
        return ShardTotalsByInstanceLoader(self.db)

    @cached_property
    def step_figures_by_instance_id(self) -> StepFiguresByInstanceLoader:
        return StepFiguresByInstanceLoader(self.db)


__all__ = ["Filters", "Loaders", "Page", "RequestDatabase", "StepFigures"]
