"""Instances: status, stored counters, performance figures, transitions and children."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.services.analytics import Rates, ReplySentimentFigures, total
from resolvers import relations
from schema.pagination import Connection
from schema.types.enums import Channel, EnrollmentStatus, EventType, InstanceStatus
from schema.types.node import Node
from schema.types.sending import SendingStatus

if TYPE_CHECKING:
    from schema.types.enrollments import Enrollment
    from schema.types.events import CampaignEvent
    from schema.types.templates import CampaignTemplate

TemplateNode = Annotated["CampaignTemplate", strawberry.lazy("schema.types.templates")]
EnrollmentNode = Annotated["Enrollment", strawberry.lazy("schema.types.enrollments")]
EventNode = Annotated["CampaignEvent", strawberry.lazy("schema.types.events")]


@strawberry.type(name="InstanceMetrics")
class InstanceMetrics:
    enrolled: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    replied: int
    bounced: int
    unsubscribed: int


@strawberry.type(name="Rates")
class RatesType:
    delivery_rate: float
    open_rate: float
    click_rate: float
    reply_rate: float
    bounce_rate: float
    unsubscribe_rate: float


@strawberry.type(
    name="ReplySentimentMetrics",
    description=(
        "Replies by sentiment, next to metrics.replied: positive (INTERESTED) and negative"
        " (NOT_INTERESTED, UNSUBSCRIBE_REQUEST) reply outcomes, each rate over the replies of"
        " the same scope (0 when there are none). Computed from the events when read."
    ),
)
class ReplySentimentMetrics:
    positive: int
    negative: int
    positive_rate: float
    negative_rate: float


def _sentiment(figures: ReplySentimentFigures) -> ReplySentimentMetrics:
    return ReplySentimentMetrics(
        positive=figures.positive,
        negative=figures.negative,
        positive_rate=figures.positive_rate,
        negative_rate=figures.negative_rate,
    )


@strawberry.type
class StepPerformance:
    channel: Channel
    step_number: int
    metrics: InstanceMetrics
    rates: RatesType
    reply_sentiment: ReplySentimentMetrics


@strawberry.type
class ChannelPerformance:
    channel: Channel
    metrics: InstanceMetrics
    rates: RatesType
    reply_sentiment: ReplySentimentMetrics


@strawberry.type
class InstancePerformance:
    """Instance-wide figures come from the stored counters; per step and per channel from events."""

    instance: strawberry.Private[Any]

    @strawberry.field
    async def metrics(self, info: Info) -> InstanceMetrics:
        return await relations.counters(info.context, self.instance)  # type: ignore[return-value]

    @strawberry.field
    async def rates(self, info: Info) -> RatesType:
        return Rates.of(await relations.counters(info.context, self.instance))  # type: ignore[return-value]

    @strawberry.field(description="The instance's replies by sentiment, from its events.")
    async def reply_sentiment(self, info: Info) -> ReplySentimentMetrics:
        figures = await relations.step_figures(
            info.context, self.instance.id, self.instance.total_enrolled
        )
        return _sentiment(sum((f.replies for f in figures), ReplySentimentFigures()))

    @strawberry.field(
        description="One entry per channel and step that has events; enrolled is the audience."
    )
    async def by_step(self, info: Info) -> list[StepPerformance]:
        figures = await relations.step_figures(
            info.context, self.instance.id, self.instance.total_enrolled
        )
        return [
            StepPerformance(
                channel=f.channel,  # type: ignore[arg-type]
                step_number=f.step_number,
                metrics=f.metrics,  # type: ignore[arg-type]
                rates=Rates.of(f.metrics),  # type: ignore[arg-type]
                reply_sentiment=_sentiment(f.replies),
            )
            for f in figures
        ]

    @strawberry.field
    async def by_channel(self, info: Info) -> list[ChannelPerformance]:
        figures = await relations.step_figures(
            info.context, self.instance.id, self.instance.total_enrolled
        )
        result = []
        for channel in sorted({f.channel for f in figures}):
            summed = total(f.metrics for f in figures if f.channel == channel)
            metrics = replace(summed, enrolled=self.instance.total_enrolled)
            result.append(
                ChannelPerformance(
                    channel=channel,  # type: ignore[arg-type]
                    metrics=metrics,  # type: ignore[arg-type]
                    rates=Rates.of(metrics),  # type: ignore[arg-type]
                    reply_sentiment=_sentiment(
                        sum(
                            (f.replies for f in figures if f.channel == channel),
                            ReplySentimentFigures(),
                        )
                    ),
                )
            )
        return result


@strawberry.type
class StatusTransition:
    from_status: InstanceStatus | None
    to_status: InstanceStatus
    actor: str | None
    reason: str | None
    at: datetime


@strawberry.type
class CampaignInstance(Node):
    name: str
    status: InstanceStatus
    provider_config: JSON
    started_at: datetime | None
    paused_at: datetime | None
    completed_at: datetime | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    async def template(self, info: Info) -> TemplateNode:
        return await info.context.loaders.template_by_id.load(self.template_id)  # type: ignore[attr-defined]

    @strawberry.field(
        description=(
            "The stored counters. enrolled counts everyone ever enrolled (removal does not"
            " lower it); the others count unique outcomes per enrollment, channel and step."
        )
    )
    async def metrics(self, info: Info) -> InstanceMetrics:
        return await relations.counters(info.context, self)  # type: ignore[return-value]

    @strawberry.field
    def performance(self) -> InstancePerformance:
        return InstancePerformance(instance=self)

    @strawberry.field(description="What the senders are doing for this instance.")
    async def sending(self, info: Info) -> SendingStatus:
        figures, reasons = await relations.sending(info.context, self)
        return SendingStatus(
            due_now=figures.due_now,
            in_flight=figures.in_flight,
            retrying=figures.retrying,
            failed=figures.failed,
            unknown=figures.unknown,
            sent_today=figures.sent_today,
            next_due_at=figures.next_due_at,
            waiting_on=reasons,
        )

    @strawberry.field(description="Every status change of this instance, oldest first.")
    async def transitions(self, info: Info) -> list[StatusTransition]:
        return await relations.transitions(info.context, self.id)  # type: ignore[no-any-return]

    @strawberry.field
    async def enrollments(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        status: EnrollmentStatus | None = None,
    ) -> Connection[EnrollmentNode]:
        result = await relations.child_page(
            info.context, "enrollments_by_instance_id", self.id, first, after, status=status
        )
        return Connection(result=result)

    @strawberry.field(description="Newest first.")
    async def events(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        event_type: EventType | None = None,
        channel: Channel | None = None,
    ) -> Connection[EventNode]:
        result = await relations.child_page(
            info.context,
            "events_by_instance_id",
            self.id,
            first,
            after,
            event_type=event_type,
            channel=channel,
        )
        return Connection(result=result)
