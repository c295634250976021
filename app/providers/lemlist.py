"""lemlist activities: one per request; ``sequenceStep`` is zero-based."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.enums import Channel, EventType, Provider, ReplySentiment
from app.domain.limits import PROVIDER_EVENT_ID_MAX
from app.providers.common import (
    PayloadError,
    Translation,
    optional_text,
    parse_step,
    parse_time,
    require,
)
from app.services.ingestion.events import NewEvent
from app.services.replies import ProviderClassification
from app.services.validation import storable

EVENTS: dict[str, tuple[EventType, Channel]] = {
    "emailsSent": (EventType.SENT, Channel.EMAIL),
    "emailsOpened": (EventType.OPENED, Channel.EMAIL),
    "emailsClicked": (EventType.CLICKED, Channel.EMAIL),
    "emailsReplied": (EventType.REPLIED, Channel.EMAIL),
    "emailsBounced": (EventType.BOUNCED, Channel.EMAIL),
    "emailsUnsubscribed": (EventType.UNSUBSCRIBED, Channel.EMAIL),
    "emailsFailed": (EventType.FAILED, Channel.EMAIL),
    "linkedinVisitDone": (EventType.PROFILE_VISITED, Channel.LINKEDIN),
    "linkedinInviteDone": (EventType.CONNECTION_REQUESTED, Channel.LINKEDIN),
    "linkedinInviteAccepted": (EventType.CONNECTION_ACCEPTED, Channel.LINKEDIN),
    "linkedinSent": (EventType.MESSAGE_SENT, Channel.LINKEDIN),
    "linkedinVoiceNoteDone": (EventType.VOICE_MESSAGE_SENT, Channel.LINKEDIN),
    "linkedinReplied": (EventType.REPLIED, Channel.LINKEDIN),
    "linkedinVisitFailed": (EventType.FAILED, Channel.LINKEDIN),
    "linkedinInviteFailed": (EventType.FAILED, Channel.LINKEDIN),
    "linkedinSendFailed": (EventType.FAILED, Channel.LINKEDIN),
    "linkedinVoiceNoteFailed": (EventType.FAILED, Channel.LINKEDIN),
}
SENTIMENTS: dict[str, ReplySentiment] = {
    "interested": ReplySentiment.INTERESTED,
    "notInterested": ReplySentiment.NOT_INTERESTED,
    "emailsInterested": ReplySentiment.INTERESTED,
    "emailsNotInterested": ReplySentiment.NOT_INTERESTED,
    "linkedinInterested": ReplySentiment.INTERESTED,
    "linkedinNotInterested": ReplySentiment.NOT_INTERESTED,
}
"""lemlist's judgements of a lead in a campaign (its lead-state groups and their email and
LinkedIn activities): classifications of the enrollment's replies, not events."""
_KEPT = ("leadEmail", "leadId", "campaignId", "campaignName", "sequenceId", "emailId")


def _classification_key(activity_id: str) -> str:
    """The activity id, refused as an event's would be (``check_event``) when unstorable."""
    if len(activity_id) > PROVIDER_EVENT_ID_MAX or not storable(activity_id):
        raise PayloadError(
            f"field '_id' must have 1 to {PROVIDER_EVENT_ID_MAX} characters, without NUL"
        )
    return activity_id


def translate(payload: Any, received_at: datetime) -> Translation:
    activity_id = str(require(payload, "_id"))
    kind = str(require(payload, "type"))
    sentiment = SENTIMENTS.get(kind)
    if sentiment is not None:
        return Translation(
            classifications=[
                ProviderClassification(
                    enrollment_ref=optional_text(payload, "enrollmentId"),
                    sentiment=sentiment,
                    provider=Provider.LEMLIST,
                    provider_event_id=_classification_key(activity_id),
                    classified_at=parse_time(payload.get("createdAt"), "createdAt", received_at),
                )
            ]
        )
    mapped = EVENTS.get(kind)
    if mapped is None:
        return Translation(ignored=1)
    event_type, channel = mapped
    step = parse_step(payload.get("sequenceStep"), "sequenceStep", offset=1)
    if step is not None and step < 1:
        raise PayloadError("field 'sequenceStep' must be 0 or more")
    event = NewEvent(
        enrollment_ref=optional_text(payload, "enrollmentId"),
        event_type=event_type,
        provider=Provider.LEMLIST,
        channel=channel,
        provider_event_id=activity_id,
        step_number=step,
        occurred_at=parse_time(payload.get("createdAt"), "createdAt", received_at),
        metadata={k: payload[k] for k in _KEPT if payload.get(k) is not None},
    )
    return Translation(events=[event])
