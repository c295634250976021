"""Every enumeration of domain.md, defined once; GraphQL and the database reuse them."""

from __future__ import annotations

from enum import StrEnum


class TemplateType(StrEnum):
    EMAIL = "email"
    LINKEDIN = "linkedin"
    MULTI_CHANNEL = "multi_channel"


class PathType(StrEnum):
    STRUCTURED = "structured"
    DYNAMIC_AI = "dynamic_ai"


class LinkedInAction(StrEnum):
    PROFILE_VISIT = "profile_visit"
    CONNECTION_REQUEST = "connection_request"
    MESSAGE = "message"
    VOICE_MESSAGE = "voice_message"


class InstanceStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"


class EnrollmentStatus(StrEnum):
    ENROLLED = "enrolled"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    REPLIED = "replied"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    FAILED = "failed"
    REMOVED = "removed"


class CrossCampaignPolicy(StrEnum):
    """What enrolling does with a contact already open in another instance (domain.md, "Across
    campaigns"); a template's ``settings.cross_campaign_policy`` holds the lowercase value."""

    ALLOW = "allow"
    SKIP = "skip"
    MOVE = "move"


POLICY_SETTING = "cross_campaign_policy"
"""The template setting that gives the policy when the request names none."""


class Channel(StrEnum):
    EMAIL = "email"
    LINKEDIN = "linkedin"


class Provider(StrEnum):
    LEMLIST = "lemlist"
    POSTMARK = "postmark"
    PHANTOMBUSTER = "phantombuster"
    API = "api"


class EventType(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    SPAM_COMPLAINT = "spam_complaint"
    PROFILE_VISITED = "profile_visited"
    CONNECTION_REQUESTED = "connection_requested"
    CONNECTION_ACCEPTED = "connection_accepted"
    MESSAGE_SENT = "message_sent"
    VOICE_MESSAGE_SENT = "voice_message_sent"
    FAILED = "failed"


class ReplySentiment(StrEnum):
    """What a reply says (domain.md "Replies"): from the provider, or set by classifyReply."""

    INTERESTED = "interested"
    NOT_INTERESTED = "not_interested"
    OUT_OF_OFFICE = "out_of_office"
    WRONG_PERSON = "wrong_person"
    UNSUBSCRIBE_REQUEST = "unsubscribe_request"
    UNKNOWN = "unknown"


POSITIVE_SENTIMENTS = frozenset({ReplySentiment.INTERESTED})
NEGATIVE_SENTIMENTS = frozenset({ReplySentiment.NOT_INTERESTED, ReplySentiment.UNSUBSCRIBE_REQUEST})
"""The replies analytics count as positive and as negative; out of office, wrong person and
unknown are neither (they say nothing about the offer)."""


class DispatchStatus(StrEnum):
    """One touch's way out: queued (waiting for its attempt time) → sending (claimed by a
    sender, under a lease) → sent | failed | unknown (interrupted where the provider cannot be
    asked) | cancelled (its enrollment stopped before the touch left)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    SPAM_COMPLAINT = "spam_complaint"
    BOUNCED = "bounced"
    MANUAL = "manual"


class SkipReason(StrEnum):
    """Why a contact of an enrollment request was not enrolled (reported per contact)."""

    ALREADY_ENROLLED = "ALREADY_ENROLLED"
    DUPLICATE_IN_REQUEST = "DUPLICATE_IN_REQUEST"
    ADDRESS_MISSING = "ADDRESS_MISSING"
    ADDRESS_INVALID = "ADDRESS_INVALID"
    VARIABLE_MISSING = "VARIABLE_MISSING"
    SUPPRESSED = "SUPPRESSED"
    ACTIVE_ELSEWHERE = "ACTIVE_ELSEWHERE"


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    WEBHOOKS = "webhooks"
    ADMIN = "admin"


class ActivityKind(StrEnum):
    """What an item of an instance's live activity stream reports."""

    EVENT = "event"
    ENROLLMENT_STATUS = "enrollment_status"
    DISPATCH = "dispatch"


class ErrorCode(StrEnum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    ALREADY_ENROLLED = "ALREADY_ENROLLED"
    INSTANCE_CLOSED = "INSTANCE_CLOSED"
    TEMPLATE_INACTIVE = "TEMPLATE_INACTIVE"
    TEMPLATE_EMPTY = "TEMPLATE_EMPTY"
    STEP_CONFLICT = "STEP_CONFLICT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    MALFORMED_PLACEHOLDER = "MALFORMED_PLACEHOLDER"
    PROVIDER_CONFIG_INCOMPLETE = "PROVIDER_CONFIG_INCOMPLETE"
    ADDRESS_MISSING = "ADDRESS_MISSING"
    ADDRESS_INVALID = "ADDRESS_INVALID"
    VARIABLE_MISSING = "VARIABLE_MISSING"
    SUPPRESSED = "SUPPRESSED"
    ACTIVE_ELSEWHERE = "ACTIVE_ELSEWHERE"


EMAIL_ONLY_EVENTS = frozenset(
    {
        EventType.SENT,
        EventType.DELIVERED,
        EventType.OPENED,
        EventType.CLICKED,
        EventType.BOUNCED,
        EventType.UNSUBSCRIBED,
        EventType.SPAM_COMPLAINT,
    }
)
LINKEDIN_ONLY_EVENTS = frozenset(
    {
        EventType.PROFILE_VISITED,
        EventType.CONNECTION_REQUESTED,
        EventType.CONNECTION_ACCEPTED,
        EventType.MESSAGE_SENT,
        EventType.VOICE_MESSAGE_SENT,
    }
)

OPEN_ENROLLMENT_STATUSES: tuple[EnrollmentStatus, ...] = (
    EnrollmentStatus.ENROLLED,
    EnrollmentStatus.ACTIVE,
    EnrollmentStatus.PAUSED,
)
"""An enrollment in one of these still holds its contact: "active elsewhere" means one of these
in another instance."""

TERMINAL_ENROLLMENT_STATUSES = frozenset(
    {
        EnrollmentStatus.COMPLETED,
        EnrollmentStatus.REPLIED,
        EnrollmentStatus.UNSUBSCRIBED,
        EnrollmentStatus.BOUNCED,
        EnrollmentStatus.FAILED,
        EnrollmentStatus.REMOVED,
    }
)

# Among terminal statuses, what a provider reports may only move an enrollment upwards.
TERMINAL_PRECEDENCE: dict[EnrollmentStatus, int] = {
    EnrollmentStatus.FAILED: 0,
    EnrollmentStatus.REMOVED: 0,
    EnrollmentStatus.COMPLETED: 1,
    EnrollmentStatus.REPLIED: 2,
    EnrollmentStatus.BOUNCED: 3,
    EnrollmentStatus.UNSUBSCRIBED: 4,
}

TERMINAL_INSTANCE_STATUSES = frozenset({InstanceStatus.COMPLETED, InstanceStatus.FAILED})

OPEN_DISPATCH_STATUSES = frozenset({DispatchStatus.QUEUED, DispatchStatus.SENDING})
"""A touch in one of these is still on its way: its enrollment's next step waits for it."""
