"""PhantomBuster posts once per agent run; each result row is one contact's outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.enums import Channel, EventType, Provider
from app.providers.common import PayloadError, Translation, json_in_text, parse_time, require
from app.services.ingestion.events import NewEvent

SCRIPTS: tuple[tuple[tuple[str, ...], EventType], ...] = (
    (("Network Booster", "Auto Connect"), EventType.CONNECTION_REQUESTED),
    (("Message Sender",), EventType.MESSAGE_SENT),
    (("Profile Visitor", "Profile Scraper"), EventType.PROFILE_VISITED),
)


def event_type_for(script: str) -> EventType | None:
    for needles, event_type in SCRIPTS:
        if any(needle in script for needle in needles):
            return event_type
    return None


def _rows(result_object: Any) -> list[Any]:
    """``resultObject`` is documented as a string but arrives as an array or object too."""
    if result_object is None or result_object == "":
        return []
    if isinstance(result_object, str):
        result_object = json_in_text(result_object, "resultObject")
    if isinstance(result_object, dict):
        return [result_object]
    if isinstance(result_object, list):
        return result_object
    raise PayloadError("field 'resultObject' must be an array of rows")


def translate(payload: Any, received_at: datetime) -> Translation:
    container = str(require(payload, "containerId"))
    require(payload, "agentId")
    rows = _rows(payload.get("resultObject"))
    script = str(payload.get("script") or "")
    kind = event_type_for(script)
    result = Translation()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise PayloadError(f"resultObject[{index}] must be an object")
        error = row.get("error")
        event_type = EventType.FAILED if error not in (None, "") else kind
        if event_type is None:
            result.ignored += 1
            continue
        enrollment = row.get("enrollmentId")
        metadata: dict[str, Any] = {"agentId": payload.get("agentId"), "containerId": container}
        if error not in (None, ""):
            metadata["error"] = str(error)[:500]
        result.events.append(
            NewEvent(
                enrollment_ref=None if enrollment in (None, "") else str(enrollment),
                event_type=event_type,
                provider=Provider.PHANTOMBUSTER,
                channel=Channel.LINKEDIN,
                provider_event_id=f"{container}:{enrollment or index}",
                occurred_at=parse_time(row.get("timestamp"), "timestamp", received_at),
                metadata=metadata,
            )
        )
    return result
