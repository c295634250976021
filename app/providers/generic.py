"""The generic, normalized form: one event, or ``{"events": [...]}`` with up to 1,000.

Anyone holding a ``webhooks`` key can post here, so an event may not claim a provider that
has an adapter: its events come only through that provider's own endpoint, and one posted
here under its name could otherwise take the dedupe key of a real delivery (issue 24)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.enums import Channel, EventType, Provider
from app.providers.common import (
    PayloadError,
    Translation,
    optional_text,
    parse_step,
    parse_time,
    require,
)
from app.services.ingestion.events import NewEvent

MAX_EVENTS = 1_000


def _event(item: Any, index: int | None, received_at: datetime) -> NewEvent | None:
    where = "" if index is None else f"events[{index}]: "
    try:
        enrollment_id = str(require(item, "enrollment_id"))
        raw_type = require(item, "event_type")
        try:
            event_type = EventType(str(raw_type).lower())
        except ValueError:
            return None
        channel = optional_text(item, "channel")
        provider = optional_text(item, "provider") or Provider.API.value
        try:
            parsed_channel = Channel(channel.lower()) if channel else None
            parsed_provider = Provider(provider.lower())
        except ValueError as exc:
            raise PayloadError(f"unknown value: {exc}") from None
        if parsed_provider is not Provider.API:
            raise PayloadError(
                f"field 'provider' may only be 'api' here: {parsed_provider.value} events"
                f" come in through /webhooks/{parsed_provider.value}"
            )
        metadata = item.get("metadata") or {}
        return NewEvent(
            enrollment_ref=enrollment_id,
            event_type=event_type,
            provider=parsed_provider,
            channel=parsed_channel,
            provider_event_id=optional_text(item, "provider_event_id"),
            step_number=parse_step(item.get("step_number"), "step_number"),
            occurred_at=parse_time(item.get("occurred_at"), "occurred_at", received_at),
            metadata=metadata,
            via_api=True,
        )
    except PayloadError as exc:
        raise PayloadError(f"{where}{exc}") from None


def translate(payload: Any, received_at: datetime) -> Translation:
    result = Translation()
    if isinstance(payload, dict) and "events" in payload:
        items = payload["events"]
        if not isinstance(items, list):
            raise PayloadError("'events' must be a list")
        if len(items) > MAX_EVENTS:
            raise PayloadError(f"at most {MAX_EVENTS} events per request, got {len(items)}")
        indexed: list[tuple[int | None, Any]] = list(enumerate(items))
    else:
        indexed = [(None, payload)]
    for index, item in indexed:
        event = _event(item, index, received_at)
        if event is None:
            result.ignored += 1
        else:
            result.events.append(event)
    return result
