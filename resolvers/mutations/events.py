"""recordEvent: the webhook ingestion path, for tools and tests."""

from __future__ import annotations

from typing import Any

from strawberry import UNSET

from app.domain.enums import LINKEDIN_ONLY_EVENTS, Channel, Provider
from app.services.ingestion.events import NewEvent, Recorded, record_event
from resolvers.context import Context
from resolvers.mutations.common import Outcome, run_mutation


def _event(data: Any) -> NewEvent:
    channel = None if data.channel in (None, UNSET) else data.channel
    # The contract defaults channel to EMAIL; for a LinkedIn-only event that default means
    # "not given", so the event type decides.
    if data.event_type in LINKEDIN_ONLY_EVENTS and channel is Channel.EMAIL:
        channel = None

    def given(value: Any) -> Any:
        return None if value is UNSET else value

    return NewEvent(
        enrollment_ref=data.enrollment_id,
        event_type=data.event_type,
        # An explicit null is "not given", as for channel: the contract's default.
        provider=Provider.API if data.provider is None else data.provider,
        channel=channel,
        provider_event_id=given(data.provider_event_id),
        step_number=given(data.step_number),
        occurred_at=given(data.occurred_at),
        metadata={} if given(data.metadata) is None else data.metadata,
        # Whoever holds a write key: deduplicated apart from what providers themselves report.
        via_api=True,
    )


async def record(context: Context, data: Any) -> Outcome[Recorded]:
    return await run_mutation(
        context, lambda s: record_event(s, _event(data)), arguments=frozenset()
    )
