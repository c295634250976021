"""What the sender does, as the frontend sees it: each touch's dispatch, an instance's sending
figures, and the suppression list."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from schema.types.enums import Channel, DispatchStatus, Provider, SuppressionReason
from schema.types.node import Node

if TYPE_CHECKING:
    from schema.types.enrollments import Enrollment

EnrollmentNode = Annotated["Enrollment", strawberry.lazy("schema.types.enrollments")]


@strawberry.type(description="One touch (enrollment, channel, step) on its way to a provider.")
class Dispatch(Node):
    channel: Channel
    step_number: int
    provider: Provider
    status: DispatchStatus
    attempts: int
    next_attempt_at: datetime | None = strawberry.field(
        description="When a queued touch is tried next."
    )
    due_at: datetime = strawberry.field(description="When the touch became due.")
    provider_message_id: str | None
    last_error: str | None
    last_error_code: str | None
    uncertain: bool = strawberry.field(
        description="The last attempt may have reached the provider; the next one asks first."
    )
    dry_run: bool = strawberry.field(
        description="Recorded by the development stand-in: nothing left the machine."
    )
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    async def enrollment(self, info: Info) -> EnrollmentNode:
        return await info.context.loaders.enrollment_by_id.load(self.enrollment_id)  # type: ignore[attr-defined]


@strawberry.type(description="An instance's sending, as the senders last left it.")
class SendingStatus:
    due_now: int = strawberry.field(description="Active contacts whose next touch is due.")
    in_flight: int = strawberry.field(description="Touches a sender holds right now.")
    retrying: int = strawberry.field(description="Touches queued for another attempt.")
    failed: int
    unknown: int = strawberry.field(
        description=(
            "Touches interrupted where the provider cannot be asked whether it took them:"
            " never resent unless retryDispatch says so."
        )
    )
    sent_today: int = strawberry.field(description="Touches sent on the instance's local day.")
    next_due_at: datetime | None
    waiting_on: list[str] = strawberry.field(
        description="Why due touches do not leave (a provider without credentials, say)."
    )


@strawberry.type(description="An address nothing is sent to again, in any instance.")
class Suppression(Node):
    channel: Channel
    address: str
    reason: SuppressionReason
    created_by: str | None
    created_at: datetime
