"""Live updates: what instanceActivity delivers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.domain import enums
from schema.types.enums import EnrollmentStatus
from schema.types.instances import InstanceMetrics

if TYPE_CHECKING:
    from schema.types.enrollments import Enrollment
    from schema.types.events import CampaignEvent
    from schema.types.sending import Dispatch

EnrollmentNode = Annotated["Enrollment", strawberry.lazy("schema.types.enrollments")]
EventNode = Annotated["CampaignEvent", strawberry.lazy("schema.types.events")]
DispatchNode = Annotated["Dispatch", strawberry.lazy("schema.types.sending")]

ActivityKind = strawberry.enum(enums.ActivityKind, name="ActivityKind")


@strawberry.type(
    description=(
        "One item of an instance's activity: a new event, an enrollment's status change, or a"
        " dispatch's outcome (sent, failed, unknown, cancelled)."
    )
)
class InstanceActivity:
    cursor: strawberry.ID = strawberry.field(
        description="Pass as `after` to resume right after this item."
    )
    kind: ActivityKind
    at: datetime = strawberry.field(description="When the change was stored.")
    enrollment: EnrollmentNode | None = strawberry.field(
        description="The enrollment concerned (null for an event of no known enrollment)."
    )
    event: EventNode | None = strawberry.field(description="The new event (kind EVENT).")
    dispatch: DispatchNode | None = strawberry.field(
        description="The dispatch and its outcome (kind DISPATCH)."
    )
    enrollment_status: EnrollmentStatus | None = strawberry.field(
        description="The enrollment's new status (kind ENROLLMENT_STATUS)."
    )
    metrics: InstanceMetrics = strawberry.field(
        description="The instance's counters as they were when this item was delivered."
    )
