"""Postmark webhooks: one record per request; dedupe keys are synthesized where Postmark has
no event id, so the same delivery posted twice yields the same key."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from app.domain.enums import Channel, EventType, Provider
from app.providers.common import PayloadError, Translation, parse_step, parse_time, require
from app.services.ingestion.events import NewEvent

# RecordType → (event, time field, recipient field, uses Postmark's own ID)
RECORDS: dict[str, tuple[EventType, str, str, bool]] = {
    "Delivery": (EventType.DELIVERED, "DeliveredAt", "Recipient", False),
    "Bounce": (EventType.BOUNCED, "BouncedAt", "Email", True),
    "SpamComplaint": (EventType.SPAM_COMPLAINT, "BouncedAt", "Email", True),
    "Open": (EventType.OPENED, "ReceivedAt", "Recipient", False),
    "Click": (EventType.CLICKED, "ReceivedAt", "Recipient", False),
    "SubscriptionChange": (EventType.UNSUBSCRIBED, "ChangedAt", "Recipient", False),
}
_KEPT = ("MessageID", "MessageStream", "Tag", "Client", "OS", "Platform", "OriginalLink", "Type")


def synthesized_key(payload: dict[str, Any], time_field: str, recipient_field: str) -> str:
    parts = [
        str(payload.get("RecordType", "")),
        str(payload.get("MessageID", "")),
        str(payload.get(recipient_field, "")),
        str(payload.get(time_field, "")),
    ]
    if payload.get("RecordType") == "Click":
        parts.append(str(payload.get("OriginalLink", "")))
    return "sha256:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def translate(payload: Any, received_at: datetime) -> Translation:
    record_type = str(require(payload, "RecordType"))
    mapped = RECORDS.get(record_type)
    if mapped is None:
        return Translation(ignored=1)
    event_type, time_field, recipient_field, has_id = mapped
    if record_type == "SubscriptionChange" and payload.get("SuppressSending") is not True:
        return Translation(ignored=1)
    key = str(require(payload, "ID")) if has_id else None
    if key is None:
        require(payload, "MessageID")
        key = synthesized_key(payload, time_field, recipient_field)
    metadata = payload.get("Metadata") or {}
    if not isinstance(metadata, dict):
        raise PayloadError("field 'Metadata' must be an object")
    kept = {k: payload[k] for k in _KEPT if payload.get(k) not in (None, "", {})}
    event = NewEvent(
        enrollment_ref=None
        if metadata.get("enrollment_id") is None
        else str(metadata["enrollment_id"]),
        event_type=event_type,
        provider=Provider.POSTMARK,
        channel=Channel.EMAIL,
        provider_event_id=key,
        step_number=parse_step(metadata.get("step_number"), "Metadata.step_number"),
        occurred_at=parse_time(payload.get(time_field), time_field, received_at),
        metadata=kept,
    )
    return Translation(events=[event])
