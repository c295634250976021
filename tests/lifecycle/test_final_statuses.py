"""Failed and removed enrollments keep their status (domain.md, decisions; issue 23).

Before this decision a provider's later report lifted a failed or removed enrollment to
replied, bounced or unsubscribed. Now nothing a provider reports moves it: the event is still
stored and counted, and an unsubscribe, a spam complaint or a hard bounce still puts the
address on the suppression list, which stops the address's running enrollments elsewhere and
refuses it in new ones.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.graphql_client import gql
from tests.lifecycle.helpers import (
    ENROLL_CONTACT,
    REMOVE_ENROLLMENT,
    assert_refused,
    create_template,
    engine_of,
    enroll,
    enrollment_row,
    fetch_all,
    instance_in,
    mutate,
    ok,
    person,
    run_transition,
)

RECORD_EVENT = """
mutation RecordEvent($input: RecordEventInput!) {
  recordEvent(input: $input) { event { id } duplicate errors { field code message } }
}
"""
METRICS = (
    "query Metrics($id: ID!) { instance(id: $id) { metrics { replied bounced unsubscribed } } }"
)
# The report, the counter it adds to, and the suppression reason it records (None: none).
REPORTS = {
    "REPLIED": ("replied", None),
    "BOUNCED": ("bounced", "bounced"),
    "UNSUBSCRIBED": ("unsubscribed", "unsubscribed"),
    "SPAM_COMPLAINT": ("unsubscribed", "spam_complaint"),
}


async def _record(
    client: httpx.AsyncClient, key: str, enrollment_id: str, kind: str, step: int = 1
) -> None:
    variables = {"input": {"enrollmentId": enrollment_id, "eventType": kind, "stepNumber": step}}
    body = await gql(client, key, RECORD_EVENT, variables)
    assert "errors" not in body, body
    result = body["data"]["recordEvent"]
    assert result["errors"] == [], result
    assert result["duplicate"] is False, result


async def _metrics(client: httpx.AsyncClient, key: str, instance_id: str) -> dict[str, int]:
    body = await gql(client, key, METRICS, {"id": instance_id})
    assert "errors" not in body, body
    metrics: dict[str, int] = body["data"]["instance"]["metrics"]
    return metrics


async def _suppressions(engine: AsyncEngine, address: str) -> list[dict[str, Any]]:
    return await fetch_all(
        engine,
        "SELECT channel::text AS channel, reason::text AS reason FROM suppressions"
        " WHERE address = :address",
        address=address,
    )


async def _final_enrollment(
    client: httpx.AsyncClient, key: str, engine: AsyncEngine, template_id: str, final: str
) -> tuple[str, str, dict[str, Any]]:
    """(enrollment id, instance id, metadata): a contact that was sent step 1, then removed or
    failed with its instance, through the API."""
    instance_id = await instance_in(client, key, engine, template_id, "active")
    metadata = person(f"final-{final}")
    enrollment_id = (await enroll(client, key, instance_id, f"final-{final}", metadata))["id"]
    await _record(client, key, enrollment_id, "SENT")
    if final == "removed":
        result = await mutate(
            client, key, REMOVE_ENROLLMENT, "removeEnrollment", {"id": enrollment_id}
        )
        ok(result, "enrollment")
    else:
        ok(await run_transition(client, key, instance_id, "fail"), "instance")
    row = await enrollment_row(engine, enrollment_id)
    assert (row["status"], row["current_step"], row["next_action_at"]) == (final, 1, None)
    return enrollment_id, instance_id, metadata


@pytest.mark.parametrize("report", list(REPORTS))
@pytest.mark.parametrize("final", ["removed", "failed"])
async def test_a_later_report_leaves_a_failed_or_removed_enrollment_as_it_is(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
    final: str,
    report: str,
) -> None:
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 0), (2, 24)])
    enrollment_id, instance_id, metadata = await _final_enrollment(
        client, write_key, engine, template_id, final
    )
    # The same person, running in another instance of the template.
    elsewhere = await instance_in(client, write_key, engine, template_id, "active")
    other = await enroll(client, write_key, elsewhere, "same-person", metadata)
    before = await enrollment_row(engine, enrollment_id)
    metrics_before = await _metrics(client, write_key, instance_id)

    await _record(client, write_key, enrollment_id, report)

    assert await enrollment_row(engine, enrollment_id) == before  # updated_at included
    counter, suppression = REPORTS[report]
    metrics_after = await _metrics(client, write_key, instance_id)
    assert metrics_after == metrics_before | {counter: metrics_before[counter] + 1}
    stored = await fetch_all(
        engine,
        "SELECT event_type::text AS type FROM campaign_events"
        " WHERE enrollment_id = CAST(:id AS uuid) ORDER BY occurred_at",
        id=enrollment_id,
    )
    assert [e["type"] for e in stored] == ["sent", report.lower()]

    suppressions = await _suppressions(engine, metadata["email"])
    other_status = (await enrollment_row(engine, other["id"]))["status"]
    again = await mutate(
        client,
        write_key,
        ENROLL_CONTACT,
        "enrollContact",
        {"instanceId": elsewhere, "input": {"contactId": "same-again", "metadata": metadata}},
    )
    if suppression is None:
        assert suppressions == []
        assert other_status == "active"
        ok(again, "enrollment")
    else:
        assert suppressions == [{"channel": "email", "reason": suppression}]
        assert other_status == ("bounced" if report == "BOUNCED" else "unsubscribed")
        assert_refused(again, "enrollment", "SUPPRESSED", ["input", "metadata", "email"])
