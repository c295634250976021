"""The counter vocabulary, stated once: what an instance counts, and what each event type does.

Every other statement of it is derived from these: the counter columns of instances and
shards, the outcome check, the SQL that counts and recounts, the metrics the API reports. The
orders are fixed so that generated columns and SQL text come out the same every run.
"""

from __future__ import annotations

from app.domain.enums import EnrollmentStatus, EventType

OUTCOME_COUNTERS: tuple[str, ...] = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "unsubscribed",
)
"""The counters of unique outcomes (one per enrollment, channel and step), in reporting order."""

INSTANCE_COUNTERS: tuple[str, ...] = ("enrolled", *OUTCOME_COUNTERS)
"""What an instance counts: everyone ever enrolled, then its outcomes."""

SENT_TYPES: tuple[EventType, ...] = (
    EventType.SENT,
    EventType.MESSAGE_SENT,
    EventType.VOICE_MESSAGE_SENT,
    EventType.CONNECTION_REQUESTED,
    EventType.PROFILE_VISITED,
)
"""The event types that report a touch sent: each counts as ``sent`` and moves its enrollment
to the step it names."""

COUNTER_OF: dict[EventType, str] = {
    **dict.fromkeys(SENT_TYPES, "sent"),
    EventType.DELIVERED: "delivered",
    EventType.OPENED: "opened",
    EventType.CLICKED: "clicked",
    EventType.REPLIED: "replied",
    EventType.BOUNCED: "bounced",
    EventType.UNSUBSCRIBED: "unsubscribed",
    EventType.SPAM_COMPLAINT: "unsubscribed",
}
"""Event type → the counter its first outcome moves; the types missing here count nothing."""

EVENT_TYPES_OF: dict[str, tuple[EventType, ...]] = {
    counter: tuple(t for t, c in COUNTER_OF.items() if c == counter) for counter in OUTCOME_COUNTERS
}
"""Outcome counter → the event types it counts (``COUNTER_OF`` read the other way)."""

STATUS_OF: dict[EventType, EnrollmentStatus] = {
    EventType.REPLIED: EnrollmentStatus.REPLIED,
    EventType.BOUNCED: EnrollmentStatus.BOUNCED,
    EventType.UNSUBSCRIBED: EnrollmentStatus.UNSUBSCRIBED,
    EventType.SPAM_COMPLAINT: EnrollmentStatus.UNSUBSCRIBED,
}
"""Event type → the terminal status it moves its enrollment to, precedence permitting."""
