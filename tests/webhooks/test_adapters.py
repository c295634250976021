"""The provider adapters, pure (no database): every row of webhooks.md's mapping tables,
driven by the JSON fixtures under tests/fixtures/providers/.

The expected mappings below are transcribed from webhooks.md, not from the adapters."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.enums import Channel, EventType, Provider
from app.providers import generic, lemlist, phantombuster, postmark
from app.providers.common import PayloadError, Translation
from app.services.ingestion.events import NewEvent, check_event
from app.services.validation import Problems
from tests.webhooks.helpers import fixture_names, load, parse_iso

RECEIVED = datetime(2025, 11, 20, 12, 0, 0, tzinfo=UTC)

# webhooks.md, lemlist: `type` -> (event, channel)
LEMLIST_MAPPING: dict[str, tuple[str, str]] = {
    "emailsSent": ("sent", "email"),
    "emailsOpened": ("opened", "email"),
    "emailsClicked": ("clicked", "email"),
    "emailsReplied": ("replied", "email"),
    "emailsBounced": ("bounced", "email"),
    "emailsUnsubscribed": ("unsubscribed", "email"),
    "emailsFailed": ("failed", "email"),
    "linkedinVisitDone": ("profile_visited", "linkedin"),
    "linkedinInviteDone": ("connection_requested", "linkedin"),
    "linkedinInviteAccepted": ("connection_accepted", "linkedin"),
    "linkedinSent": ("message_sent", "linkedin"),
    "linkedinVoiceNoteDone": ("voice_message_sent", "linkedin"),
    "linkedinReplied": ("replied", "linkedin"),
    "linkedinVisitFailed": ("failed", "linkedin"),
    "linkedinInviteFailed": ("failed", "linkedin"),
    "linkedinSendFailed": ("failed", "linkedin"),
    "linkedinVoiceNoteFailed": ("failed", "linkedin"),
}
LEMLIST_IGNORED = ("paused", "skipped")
# domain.md, Replies: lemlist's interested / not interested (the lead-state groups and their
# email and LinkedIn activities, as lemlist's webhook documentation lists them) -> sentiment
LEMLIST_SENTIMENTS = {
    "interested": "interested",
    "notInterested": "not_interested",
    "emailsInterested": "interested",
    "emailsNotInterested": "not_interested",
    "linkedinInterested": "interested",
    "linkedinNotInterested": "not_interested",
}
LEMLIST_KEPT = ("leadEmail", "leadId", "campaignId", "campaignName", "sequenceId", "emailId")

# webhooks.md, Postmark: RecordType -> (event, time field, recipient field, uses `ID`)
POSTMARK_MAPPING: dict[str, tuple[str, str, str, bool]] = {
    "Delivery": ("delivered", "DeliveredAt", "Recipient", False),
    "Bounce": ("bounced", "BouncedAt", "Email", True),
    "SpamComplaint": ("spam_complaint", "BouncedAt", "Email", True),
    "Open": ("opened", "ReceivedAt", "Recipient", False),
    "Click": ("clicked", "ReceivedAt", "Recipient", False),
    "SubscriptionChange": ("unsubscribed", "ChangedAt", "Recipient", False),
}

# webhooks.md, PhantomBuster: fixture -> event of its script
PHANTOM_SCRIPTS: dict[str, str | None] = {
    "network_booster_string": "connection_requested",
    "auto_connect_array": "connection_requested",
    "message_sender_object": "message_sent",
    "profile_visitor_string": "profile_visited",
    "profile_scraper_array": "profile_visited",
    "search_export_other": None,
}


def only(translation: Translation) -> NewEvent:
    assert translation.ignored == 0
    assert len(translation.events) == 1
    return translation.events[0]


def test_every_lemlist_type_has_a_fixture() -> None:
    assert set(fixture_names("lemlist")) == (
        set(LEMLIST_MAPPING) | set(LEMLIST_IGNORED) | set(LEMLIST_SENTIMENTS)
    )


# ----------------------------------------------------------------------------- lemlist


@pytest.mark.parametrize("kind", sorted(LEMLIST_MAPPING))
def test_lemlist_type_maps_to_its_event(kind: str) -> None:
    payload = load("lemlist", kind)
    assert payload["type"] == kind
    event = only(lemlist.translate(payload, RECEIVED))
    event_type, channel = LEMLIST_MAPPING[kind]
    assert event.event_type == EventType(event_type)
    assert event.channel == Channel(channel)
    assert event.provider == Provider.LEMLIST
    assert event.provider_event_id == payload["_id"]
    assert event.enrollment_ref == payload["enrollmentId"]
    # sequenceStep is zero-based.
    assert event.step_number == payload["sequenceStep"] + 1
    assert event.occurred_at == parse_iso(payload["createdAt"])
    for name in LEMLIST_KEPT:
        if name in payload:
            assert event.metadata[name] == payload[name]


def test_lemlist_linkedin_replied_is_a_linkedin_reply() -> None:
    event = only(lemlist.translate(load("lemlist", "linkedinReplied"), RECEIVED))
    assert (event.event_type, event.channel) == (EventType.REPLIED, Channel.LINKEDIN)


@pytest.mark.parametrize(
    "kind",
    [
        "linkedinVisitFailed",
        "linkedinInviteFailed",
        "linkedinSendFailed",
        "linkedinVoiceNoteFailed",
    ],
)
def test_lemlist_linkedin_failures_are_linkedin_failed(kind: str) -> None:
    event = only(lemlist.translate(load("lemlist", kind), RECEIVED))
    assert (event.event_type, event.channel) == (EventType.FAILED, Channel.LINKEDIN)


@pytest.mark.parametrize("kind", sorted(LEMLIST_SENTIMENTS))
def test_lemlist_interest_types_classify_the_enrollments_replies(kind: str) -> None:
    payload = load("lemlist", kind)
    assert payload["type"] == kind
    translation = lemlist.translate(payload, RECEIVED)
    assert (translation.events, translation.ignored) == ([], 0)
    [classification] = translation.classifications
    assert classification.sentiment.value == LEMLIST_SENTIMENTS[kind]
    assert classification.provider == Provider.LEMLIST
    assert classification.provider_event_id == payload["_id"]
    assert classification.enrollment_ref == payload["enrollmentId"]
    assert classification.classified_at == parse_iso(payload["createdAt"])


@pytest.mark.parametrize("kind", LEMLIST_IGNORED)
def test_lemlist_untracked_types_are_ignored(kind: str) -> None:
    translation = lemlist.translate(load("lemlist", kind), RECEIVED)
    assert translation.events == []
    assert translation.ignored == 1


@pytest.mark.parametrize(("sequence_step", "step_number"), [(0, 1), (1, 2), ("2", 3), (9, 10)])
def test_lemlist_sequence_step_is_zero_based(sequence_step: Any, step_number: int) -> None:
    payload = load("lemlist", "emailsOpened") | {"sequenceStep": sequence_step}
    assert only(lemlist.translate(payload, RECEIVED)).step_number == step_number


def test_lemlist_without_step_or_time_uses_none_and_arrival() -> None:
    payload = load("lemlist", "emailsOpened")
    del payload["sequenceStep"], payload["createdAt"]
    event = only(lemlist.translate(payload, RECEIVED))
    assert event.step_number is None
    assert event.occurred_at == RECEIVED


@pytest.mark.parametrize("missing", ["_id", "type"])
def test_lemlist_missing_required_field_is_named(missing: str) -> None:
    payload = load("lemlist", "emailsOpened")
    del payload[missing]
    with pytest.raises(PayloadError, match=f"'{missing}'"):
        lemlist.translate(payload, RECEIVED)


# ----------------------------------------------------------------------------- postmark


@pytest.mark.parametrize("record_type", sorted(POSTMARK_MAPPING))
def test_postmark_record_type_maps_to_its_event(record_type: str) -> None:
    payload = load("postmark", record_type)
    assert payload["RecordType"] == record_type
    event = only(postmark.translate(payload, RECEIVED))
    event_type, time_field, _, uses_id = POSTMARK_MAPPING[record_type]
    assert event.event_type == EventType(event_type)
    assert event.channel == Channel.EMAIL
    assert event.provider == Provider.POSTMARK
    assert event.occurred_at == parse_iso(payload[time_field])
    assert event.enrollment_ref == payload["Metadata"]["enrollment_id"]
    # Metadata.step_number arrives as a string.
    assert payload["Metadata"]["step_number"] == "1"
    assert event.step_number == 1
    assert event.provider_event_id
    if uses_id:
        assert event.provider_event_id == str(payload["ID"])
    else:
        assert event.provider_event_id != str(payload.get("ID"))


def test_postmark_subscription_change_without_suppression_is_ignored() -> None:
    payload = load("postmark", "SubscriptionChange_reactivated")
    assert payload["SuppressSending"] is False
    translation = postmark.translate(payload, RECEIVED)
    assert translation.events == []
    assert translation.ignored == 1


def test_postmark_unknown_record_type_is_ignored() -> None:
    payload = load("postmark", "Open") | {"RecordType": "Inbound"}
    translation = postmark.translate(payload, RECEIVED)
    assert (translation.events, translation.ignored) == ([], 1)


@pytest.mark.parametrize("record_type", ["Delivery", "Open", "Click", "SubscriptionChange"])
def test_postmark_same_record_twice_gives_the_same_key(record_type: str) -> None:
    first = only(postmark.translate(load("postmark", record_type), RECEIVED))
    again = only(postmark.translate(load("postmark", record_type), RECEIVED + timedelta(hours=1)))
    assert first.provider_event_id == again.provider_event_id


def test_postmark_two_different_opens_give_two_keys() -> None:
    first = load("postmark", "Open")
    second = first | {"ReceivedAt": "2025-11-09T18:45:00Z"}
    keys = {only(postmark.translate(p, RECEIVED)).provider_event_id for p in (first, second)}
    assert len(keys) == 2


def test_postmark_clicks_on_different_links_give_different_keys() -> None:
    first = load("postmark", "Click")
    second = first | {"OriginalLink": "https://ourcompany.example/pricing"}
    assert first["ReceivedAt"] == second["ReceivedAt"]
    keys = {only(postmark.translate(p, RECEIVED)).provider_event_id for p in (first, second)}
    assert len(keys) == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("MessageID", "11111111-2222-4333-8444-555555555555"), ("Recipient", "grace@example.com")],
)
def test_postmark_synthesized_key_depends_on_message_and_recipient(field: str, value: str) -> None:
    base = load("postmark", "Delivery")
    keys = {
        only(postmark.translate(p, RECEIVED)).provider_event_id
        for p in (base, base | {field: value})
    }
    assert len(keys) == 2


def test_postmark_delivery_and_open_of_one_message_have_different_keys() -> None:
    opened = load("postmark", "Open")
    delivered = load("postmark", "Delivery") | {"DeliveredAt": opened["ReceivedAt"]}
    keys = {only(postmark.translate(p, RECEIVED)).provider_event_id for p in (opened, delivered)}
    assert len(keys) == 2


def test_postmark_bounce_and_complaint_keys_are_their_ids() -> None:
    bounce = only(postmark.translate(load("postmark", "Bounce"), RECEIVED))
    retried = load("postmark", "Bounce") | {"BouncedAt": "2025-11-09T10:00:00Z"}
    # Same ID, so the same event even if a field changed on a retry.
    assert only(postmark.translate(retried, RECEIVED)).provider_event_id == bounce.provider_event_id


@pytest.mark.parametrize(("record_type", "missing"), [("Open", "RecordType"), ("Bounce", "ID")])
def test_postmark_missing_required_field_is_named(record_type: str, missing: str) -> None:
    payload = load("postmark", record_type)
    del payload[missing]
    with pytest.raises(PayloadError, match=f"'{missing}'"):
        postmark.translate(payload, RECEIVED)


def test_postmark_without_metadata_has_no_enrollment() -> None:
    payload = load("postmark", "Open")
    del payload["Metadata"]
    event = only(postmark.translate(payload, RECEIVED))
    assert event.enrollment_ref is None
    assert event.step_number is None


# ----------------------------------------------------------------------------- phantombuster


def rows_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    result = payload["resultObject"]
    if isinstance(result, str):
        result = json.loads(result)
    return result if isinstance(result, list) else [result]


@pytest.mark.parametrize("name", sorted(PHANTOM_SCRIPTS))
def test_phantombuster_script_decides_the_event(name: str) -> None:
    payload = load("phantombuster", name)
    translation = phantombuster.translate(payload, RECEIVED)
    rows = rows_of(payload)
    assert rows, "fixtures with rows only"
    expected = PHANTOM_SCRIPTS[name]
    if expected is None:
        assert translation.events == []
        assert translation.ignored == len(rows)
        return
    assert translation.ignored == 0
    assert len(translation.events) == len(rows)
    for row, event in zip(rows, translation.events, strict=True):
        wanted = "failed" if row.get("error") else expected
        assert event.event_type == EventType(wanted)
        assert event.channel == Channel.LINKEDIN
        assert event.provider == Provider.PHANTOMBUSTER
        assert event.enrollment_ref == row["enrollmentId"]
        assert event.provider_event_id == f"{payload['containerId']}:{row['enrollmentId']}"
        want_time = parse_iso(row["timestamp"]) if "timestamp" in row else RECEIVED
        assert event.occurred_at == want_time


def test_phantombuster_result_object_shapes() -> None:
    """The string, array and object forms of resultObject carry the same rows."""
    as_string = load("phantombuster", "network_booster_string")
    assert isinstance(as_string["resultObject"], str)
    as_array = as_string | {"resultObject": json.loads(as_string["resultObject"])}
    as_object = as_string | {"resultObject": json.loads(as_string["resultObject"])[0]}
    from_string = phantombuster.translate(as_string, RECEIVED).events
    assert from_string == phantombuster.translate(as_array, RECEIVED).events
    assert phantombuster.translate(as_object, RECEIVED).events == from_string[:1]
    assert len(from_string) == 2


def test_phantombuster_row_with_error_is_failed() -> None:
    payload = load("phantombuster", "network_booster_string")
    events = phantombuster.translate(payload, RECEIVED).events
    by_enrollment = {e.enrollment_ref: e.event_type for e in events}
    rows = rows_of(payload)
    assert by_enrollment == {
        rows[0]["enrollmentId"]: EventType.CONNECTION_REQUESTED,
        rows[1]["enrollmentId"]: EventType.FAILED,
    }
    # An empty error is no error.
    clean = copy.deepcopy(rows)
    clean[1]["error"] = ""
    events = phantombuster.translate(payload | {"resultObject": clean}, RECEIVED).events
    assert {e.event_type for e in events} == {EventType.CONNECTION_REQUESTED}


@pytest.mark.parametrize("result_object", ["[]", [], "", None, "absent"])
def test_phantombuster_run_without_rows_yields_nothing(result_object: Any) -> None:
    payload = load("phantombuster", "no_rows")
    if result_object == "absent":
        del payload["resultObject"]
    else:
        payload["resultObject"] = result_object
    translation = phantombuster.translate(payload, RECEIVED)
    assert (translation.events, translation.ignored) == ([], 0)


@pytest.mark.parametrize("missing", ["containerId", "agentId"])
def test_phantombuster_missing_required_field_is_named(missing: str) -> None:
    payload = load("phantombuster", "message_sender_object")
    del payload[missing]
    with pytest.raises(PayloadError, match=f"'{missing}'"):
        phantombuster.translate(payload, RECEIVED)


def test_phantombuster_result_object_not_json_is_a_payload_error() -> None:
    payload = load("phantombuster", "message_sender_object") | {"resultObject": "[{oops"}
    with pytest.raises(PayloadError, match="resultObject"):
        phantombuster.translate(payload, RECEIVED)


# ----------------------------------------------------------------------------- generic

GENERIC_EVENT = {
    "enrollment_id": "4f0c2d1e-8a7b-4c6d-9e5f-0a1b2c3d4e5f",
    "event_type": "opened",
    "occurred_at": "2025-11-09T13:00:00Z",
    "channel": "email",
    "provider": "api",
    "provider_event_id": "evt-123",
    "step_number": 2,
    "metadata": {"client": "Gmail"},
}


def test_generic_single_event() -> None:
    event = only(generic.translate(GENERIC_EVENT, RECEIVED))
    assert event == NewEvent(
        enrollment_ref=GENERIC_EVENT["enrollment_id"],
        event_type=EventType.OPENED,
        provider=Provider.API,
        channel=Channel.EMAIL,
        provider_event_id="evt-123",
        step_number=2,
        occurred_at=parse_iso("2025-11-09T13:00:00Z"),
        metadata={"client": "Gmail"},
        via_api=True,
    )


def test_generic_batch_and_unknown_types() -> None:
    items = [
        GENERIC_EVENT,
        GENERIC_EVENT | {"event_type": "sent", "provider_event_id": "evt-124"},
        GENERIC_EVENT | {"event_type": "email_forwarded", "provider_event_id": "evt-125"},
        GENERIC_EVENT | {"event_type": "replied", "provider_event_id": "evt-126"},
    ]
    translation = generic.translate({"events": items}, RECEIVED)
    assert [e.event_type for e in translation.events] == [
        EventType.OPENED,
        EventType.SENT,
        EventType.REPLIED,
    ]
    assert [e.provider_event_id for e in translation.events] == ["evt-123", "evt-124", "evt-126"]
    assert translation.ignored == 1


def test_generic_unknown_single_event_is_ignored() -> None:
    translation = generic.translate(GENERIC_EVENT | {"event_type": "meeting_booked"}, RECEIVED)
    assert (translation.events, translation.ignored) == ([], 1)


@pytest.mark.parametrize(
    ("event_type", "channel"),
    [
        ("sent", Channel.EMAIL),
        ("opened", Channel.EMAIL),
        ("replied", Channel.EMAIL),
        ("failed", Channel.EMAIL),
        ("profile_visited", Channel.LINKEDIN),
        ("connection_requested", Channel.LINKEDIN),
        ("connection_accepted", Channel.LINKEDIN),
        ("message_sent", Channel.LINKEDIN),
        ("voice_message_sent", Channel.LINKEDIN),
    ],
)
def test_generic_defaults(event_type: str, channel: Channel) -> None:
    minimal = {"enrollment_id": GENERIC_EVENT["enrollment_id"], "event_type": event_type}
    event = only(generic.translate(minimal, RECEIVED))
    assert event.occurred_at == RECEIVED
    assert event.provider == Provider.API
    assert event.provider_event_id is None
    assert event.step_number is None
    problems = Problems()
    checked = check_event(problems, event)
    assert problems.errors == []
    assert checked.channel == channel


def test_generic_at_most_1000_events() -> None:
    item = {"enrollment_id": GENERIC_EVENT["enrollment_id"], "event_type": "opened"}
    assert len(generic.translate({"events": [item] * 1000}, RECEIVED).events) == 1000
    with pytest.raises(PayloadError, match="1001"):
        generic.translate({"events": [item] * 1001}, RECEIVED)


@pytest.mark.parametrize("missing", ["enrollment_id", "event_type"])
def test_generic_missing_required_field_is_named(missing: str) -> None:
    single = {k: v for k, v in GENERIC_EVENT.items() if k != missing}
    with pytest.raises(PayloadError, match=f"'{missing}'"):
        generic.translate(single, RECEIVED)
    batch = {"events": [GENERIC_EVENT, GENERIC_EVENT, single]}
    with pytest.raises(PayloadError, match=rf"events\[2\].*'{missing}'"):
        generic.translate(batch, RECEIVED)
