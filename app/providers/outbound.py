"""What the sender hands a provider client and what it gets back, whatever the provider.

A client turns each touch into one outcome:
- ``sent``: the provider took it; ``message_id`` is its id for the message;
- ``retry``: it did not take it (timeout before sending, connection refused, 5xx, 429), try
  again later, no sooner than ``retry_after`` when the provider said;
- ``failed``: it refused this message for good (an invalid or inactive recipient);
- ``uncertain``: the request may have reached it but the answer was lost; the sender asks the
  provider (Postmark) or marks the touch ``unknown`` (PhantomBuster), never resends blindly.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from app.domain.enums import Channel, LinkedInAction, Provider


class Kind(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True, slots=True)
class Sender:
    """The instance's sender identity and provider settings a client needs."""

    from_email: str | None = None
    from_name: str | None = None
    message_stream: str = "outbound"
    agents: Mapping[LinkedInAction, str] = field(default_factory=dict)
    lemlist_campaign_id: str | None = None


@dataclass(frozen=True, slots=True)
class Touch:
    """One rendered touch, ready to leave."""

    dispatch_id: uuid.UUID
    enrollment_id: uuid.UUID
    instance_id: uuid.UUID
    contact_id: str
    channel: Channel
    step_number: int
    address: str
    body: str
    sender: Sender
    subject: str | None = None
    action: LinkedInAction | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    message_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @classmethod
    def sent(cls, message_id: str) -> Outcome:
        return cls(Kind.SENT, message_id=message_id)


class CannotAsk(Exception):
    """The provider could not be asked now (network, 5xx, an unreadable answer)."""


class Client(Protocol):
    """A provider's API as the sender uses it."""

    provider: Provider
    batch_size: int
    """How many touches one ``send`` call takes."""
    reconcilable: bool
    """Whether ``find`` can tell if a touch whose answer was lost was taken (else: unknown)."""
    idempotent: bool
    """Whether sending a touch twice cannot reach the contact twice (safe to resend)."""

    async def send(self, touches: Sequence[Touch]) -> list[Outcome]:
        """One outcome per touch, in order. Never raises for a provider's or network failure."""
        ...

    async def find(self, touch: Touch) -> str | None:
        """The message id if the provider already has this touch; None when it has not.
        Raises CannotAsk when the provider cannot tell now."""
        ...
