"""The database guards of reply sentiment: only replies carry one, from the known list, with
who and when; a return date only when out of office; a person's classification names its
reply and a provider's does not; and the status guard's one way down, replied to active, only
for an enrollment whose latest reply is out of office. Each rule broken with raw SQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.constraints.helpers import (
    AT,
    CHECK_VIOLATION,
    execute,
    insert,
    insert_enrollment,
    insert_event,
    refused,
)

CLASSIFIED = {"sentiment": "interested", "sentiment_by": "test", "sentiment_at": AT}
EVENT_CASES = [
    pytest.param({"event_type": "replied", **CLASSIFIED}, None, id="classified reply"),
    pytest.param({"event_type": "replied"}, None, id="unclassified reply"),
    pytest.param({"event_type": "opened"}, None, id="an open has no sentiment"),
    pytest.param(
        {"event_type": "opened", **CLASSIFIED}, "sentiment_only_on_replies", id="open classified"
    ),
    pytest.param(
        {"event_type": "replied", **CLASSIFIED, "sentiment": "angry"},
        "sentiment_known",
        id="unknown sentiment",
    ),
    pytest.param(
        {"event_type": "replied", "sentiment": "interested", "sentiment_at": AT},
        "sentiment_classified",
        id="no classifier",
    ),
    pytest.param(
        {"event_type": "replied", "sentiment_by": "test", "sentiment_at": AT},
        "sentiment_classified",
        id="classifier without sentiment",
    ),
    pytest.param(
        {"event_type": "replied", **CLASSIFIED, "return_date": AT},
        "return_date_out_of_office",
        id="return date when interested",
    ),
    pytest.param(
        {"event_type": "replied", **CLASSIFIED, "sentiment": "out_of_office", "return_date": AT},
        None,
        id="return date when out of office",
    ),
]


@pytest.mark.parametrize(("overrides", "refused_by"), EVENT_CASES)
async def test_event_sentiment_checks(
    session: AsyncSession,
    parents: dict[str, uuid.UUID],
    overrides: dict[str, Any],
    refused_by: str | None,
) -> None:
    values = {
        "enrollment_id": parents["enrollment_id"],
        "instance_id": parents["instance_id"],
        "channel": "email",
        **overrides,
    }
    if refused_by is None:
        await insert_event(session, **values)
        return
    columns = ", ".join(["provider", "occurred_at", *values])
    params = ", ".join(["'api'", "now()", *(f":{c}" for c in values)])
    error = await refused(
        session, f"INSERT INTO campaign_events ({columns}) VALUES ({params})", **values
    )
    assert error.sqlstate == CHECK_VIOLATION
    assert error.constraint_name == f"ck_campaign_events_{refused_by}"


async def test_enrollment_sentiment_is_known(
    session: AsyncSession, parents: dict[str, uuid.UUID]
) -> None:
    sql = "UPDATE enrollments SET sentiment = :s WHERE id = :id"
    assert await execute(session, sql, s="wrong_person", id=parents["enrollment_id"]) == 1
    error = await refused(session, sql, s="maybe", id=parents["enrollment_id"])
    assert error.sqlstate == CHECK_VIOLATION
    assert error.constraint_name == "ck_enrollments_sentiment_known"


CLASSIFICATION_CASES = [
    pytest.param({"provider": "api", "event": True}, None, id="a person names the reply"),
    pytest.param({"provider": "lemlist"}, None, id="a provider names the enrollment"),
    pytest.param({"provider": "api"}, "api_names_its_reply", id="a person without a reply"),
    pytest.param(
        {"provider": "lemlist", "event": True}, "api_names_its_reply", id="a provider with one"
    ),
    pytest.param({"provider": "lemlist", "sentiment": "meh"}, "sentiment_known", id="unknown"),
    pytest.param(
        {"provider": "lemlist", "return_date": AT},
        "return_date_out_of_office",
        id="return date when interested",
    ),
    pytest.param({"provider": "lemlist", "classified_by": ""}, "classified_by_length", id="nobody"),
    pytest.param(
        {"provider": "lemlist", "provider_event_id": ""},
        "provider_event_id_length",
        id="empty provider key",
    ),
]


@pytest.mark.parametrize(("overrides", "refused_by"), CLASSIFICATION_CASES)
async def test_classification_checks(
    session: AsyncSession,
    parents: dict[str, uuid.UUID],
    overrides: dict[str, Any],
    refused_by: str | None,
) -> None:
    reply = await insert_event(
        session,
        enrollment_id=parents["enrollment_id"],
        instance_id=parents["instance_id"],
        event_type="replied",
    )
    values: dict[str, Any] = {
        "enrollment_id": parents["enrollment_id"],
        "sentiment": "interested",
        "classified_by": "someone",
        "classified_at": AT,
        **{k: v for k, v in overrides.items() if k != "event"},
    }
    if overrides.get("event"):
        values["event_id"] = reply
    if refused_by is None:
        await insert(session, "reply_classifications", **values)
        return
    columns = ", ".join(values)
    params = ", ".join(f":{c}" for c in values)
    error = await refused(
        session, f"INSERT INTO reply_classifications ({columns}) VALUES ({params})", **values
    )
    assert error.sqlstate == CHECK_VIOLATION
    assert error.constraint_name == f"ck_reply_classifications_{refused_by}"


@pytest.mark.parametrize(
    ("before", "sentiment", "allowed"),
    [
        ("replied", "out_of_office", True),
        ("replied", None, False),
        ("replied", "interested", False),
        ("replied", "unknown", False),
        ("bounced", "out_of_office", False),
        ("unsubscribed", "out_of_office", False),
        ("completed", "out_of_office", False),
        ("removed", "out_of_office", False),
    ],
)
async def test_only_an_out_of_office_reply_puts_an_enrollment_back_to_active(
    session: AsyncSession,
    parents: dict[str, uuid.UUID],
    before: str,
    sentiment: str | None,
    allowed: bool,
) -> None:
    enrollment_id = await insert_enrollment(
        session,
        parents["instance_id"],
        "contact-3",
        status=before,
        unsubscribed_at=AT,
        sentiment=sentiment,
    )
    sql = "UPDATE enrollments SET status = 'active' WHERE id = :id"
    if allowed:
        assert await execute(session, sql, id=enrollment_id) == 1
        return
    error = await refused(session, sql, id=enrollment_id)
    assert error.sqlstate == CHECK_VIOLATION
    assert error.constraint_name == "enrollment_status_precedence"
    status = await session.scalar(
        text("SELECT status::text FROM enrollments WHERE id = :id"), {"id": enrollment_id}
    )
    assert status == before
