"""Enrollment and event fields (orphans included), read against the demo data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette

from app.cli.seed import _enrollments, _events, _instances
from tests.graphql.seed_reading import (
    DEFS_NOW,
    ENROLLMENT_FIELDS,
    ENROLLMENT_SQL,
    EVENT_FIELDS,
    EVENT_SQL,
    INSTANCE_FIELDS,
    INSTANCE_SQL,
    METRICS,
    PAGE_INFO,
    enrollment_expected,
    event_expected,
    fetch,
    ids,
    instance_expected,
    newest_first,
    ok,
    parse_time,
    run,
    same,
    seed_figures,
    sid,
)

# --------------------------------------------------------------------------- enrollments


async def test_instance_enrollments_with_status(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""query($id: ID!, $status: EnrollmentStatus) {{ instance(id: $id) {{
      enrollments(status: $status) {{ totalCount nodes {{ {ENROLLMENT_FIELDS} instance {{ id }} }}
        edges {{ cursor node {{ id }} }} {PAGE_INFO} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, ENROLLMENT_SQL)}
    definitions = {str(e["id"]): e for e in _enrollments(DEFS_NOW)}
    statuses = ("ENROLLED", "ACTIVE", "PAUSED", "COMPLETED", "REPLIED", "UNSUBSCRIBED")
    statuses = (*statuses, "BOUNCED", "FAILED", "REMOVED")
    for instance in _instances(DEFS_NOW):
        instance_id = str(instance["id"])
        order = await newest_first(
            seeded, "enrollments", "instance_id = CAST(:id AS uuid)", id=instance_id
        )
        assert set(order) == {
            i for i, e in definitions.items() if e["instance_id"] == instance["id"]
        }
        result = (await ok(client, read_key, query, {"id": instance_id}))["instance"]["enrollments"]
        assert ids(result["nodes"]) == order
        assert result["totalCount"] == len(order)
        assert [e["node"]["id"] for e in result["edges"]] == order
        for node in result["nodes"]:
            d = definitions[node["id"]]
            same(node, enrollment_expected(rows[node["id"]]))
            same(
                node,
                {
                    "contactId": d["contact_id"],
                    "status": d["status"].name,
                    "currentStep": d["current_step"],
                    "metadata": d["metadata_"],
                    "instance": {"id": instance_id},
                },
            )
        for status in statuses:
            variables = {"id": instance_id, "status": status}
            filtered = (await ok(client, read_key, query, variables))["instance"]["enrollments"]
            want = [i for i in order if definitions[i]["status"].name == status]
            assert ids(filtered["nodes"]) == want, (instance_id, status)
            assert filtered["totalCount"] == len(want)


async def test_enrollment_by_id_and_its_events(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    grace = sid("enrollment:grace")
    await run(
        seeded,
        "UPDATE enrollments SET status = 'unsubscribed', unsubscribed_at = now(),"
        " completed_at = now() - interval '1 minute', next_action_at = NULL"
        " WHERE id = CAST(:id AS uuid)",
        id=grace,
    )
    query = f"""query($id: ID!, $type: EventType) {{ enrollment(id: $id) {{ {ENROLLMENT_FIELDS}
      instance {{ {INSTANCE_FIELDS} metrics {{ {METRICS} }} }}
      events(first: 100, eventType: $type) {{ totalCount nodes {{ {EVENT_FIELDS}
        enrollment {{ id }} instance {{ id }} }} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, ENROLLMENT_SQL)}
    instances = {r["id"]: r for r in await fetch(seeded, INSTANCE_SQL)}
    events = {r["id"]: r for r in await fetch(seeded, EVENT_SQL)}

    node = (await ok(client, read_key, query, {"id": grace}))["enrollment"]
    same(node, enrollment_expected(rows[grace]))
    assert node["status"] == "UNSUBSCRIBED"
    # Both set by the UPDATE above, one minute apart.
    assert parse_time(node["unsubscribedAt"]) - parse_time(node["completedAt"]) == timedelta(
        minutes=1
    )
    assert node["nextActionAt"] is None

    for d in _enrollments(DEFS_NOW):
        enrollment_id, instance_id = str(d["id"]), str(d["instance_id"])
        node = (await ok(client, read_key, query, {"id": enrollment_id}))["enrollment"]
        same(node, enrollment_expected(rows[enrollment_id]))
        same(node["instance"], instance_expected(instances[instance_id]))
        assert (
            node["instance"]["metrics"]
            == seed_figures(
                next(
                    k
                    for k in ("tech-q4", "founders-nov", "warm-draft")
                    if sid(f"instance:{k}") == instance_id
                )
            )["metrics"]
        )
        order = await newest_first(
            seeded, "campaign_events", "enrollment_id = CAST(:id AS uuid)", id=enrollment_id
        )
        assert ids(node["events"]["nodes"]) == order
        assert node["events"]["totalCount"] == len(order)
        for event in node["events"]["nodes"]:
            same(event, event_expected(events[event["id"]]))
            assert event["enrollment"] == {"id": enrollment_id}
            assert event["instance"] == {"id": instance_id}
        for event_type in sorted({e["event_type"].name for e in _events(DEFS_NOW)} | {"BOUNCED"}):
            variables = {"id": enrollment_id, "type": event_type}
            filtered = (await ok(client, read_key, query, variables))["enrollment"]["events"]
            want = [i for i in order if events[i]["event_type"].upper() == event_type]
            assert ids(filtered["nodes"]) == want, (enrollment_id, event_type)
            assert filtered["totalCount"] == len(want)

    ada = await ok(client, read_key, query, {"id": sid("enrollment:ada"), "type": "OPENED"})
    assert ada["enrollment"]["events"]["totalCount"] == 2  # two opens of the same email
    for unknown in (sid("enrollment:nobody"), sid("instance:tech-q4")):
        assert await ok(client, read_key, query, {"id": unknown}) == {"enrollment": None}


# --------------------------------------------------------------------------- events


async def test_events_match_the_seed(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""query($id: ID!) {{ instance(id: $id) {{ events(first: 100) {{ totalCount
      nodes {{ {EVENT_FIELDS} enrollment {{ id contactId }} instance {{ id name }} }} }} }} }}"""
    occurred = {r["id"]: r["occurred_at"] for r in await fetch(seeded, EVENT_SQL)}
    enrollments = {e["id"]: e for e in _enrollments(DEFS_NOW)}
    instances = {i["id"]: i for i in _instances(DEFS_NOW)}
    definitions = _events(DEFS_NOW)
    seen = 0
    for instance in instances.values():
        defs = {str(e["id"]): e for e in definitions if e["instance_id"] == instance["id"]}
        result = await ok(client, read_key, query, {"id": str(instance["id"])})
        events = result["instance"]["events"]
        assert events["totalCount"] == len(defs)
        assert ids(events["nodes"]) == await newest_first(
            seeded, "campaign_events", "instance_id = CAST(:id AS uuid)", id=str(instance["id"])
        )
        for node in events["nodes"]:
            d = defs[node["id"]]
            same(
                node,
                {
                    "eventType": d["event_type"].name,
                    "channel": d["channel"].name,
                    "provider": d["provider"].name,
                    "providerEventId": d["provider_event_id"],
                    "stepNumber": d["step_number"],
                    "occurredAt": occurred[node["id"]],
                    "metadata": d["metadata_"],
                    "enrollment": {
                        "id": str(d["enrollment_id"]),
                        "contactId": enrollments[d["enrollment_id"]]["contact_id"],
                    },
                    "instance": {"id": str(instance["id"]), "name": instance["name"]},
                },
            )
            seen += 1
    assert seen == len(definitions)


async def test_instance_events_by_type_and_channel(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = """query($id: ID!, $type: EventType, $channel: Channel) { instance(id: $id) {
      events(first: 100, eventType: $type, channel: $channel) { totalCount nodes { id } } } }"""
    events = await fetch(seeded, EVENT_SQL)
    for key in ("tech-q4", "founders-nov", "warm-draft"):
        instance_id = sid(f"instance:{key}")
        order = await newest_first(
            seeded, "campaign_events", "instance_id = CAST(:id AS uuid)", id=instance_id
        )
        kinds = {e["id"]: (e["event_type"].upper(), e["channel"].upper()) for e in events}
        for event_type in (None, "SENT", "OPENED", "PROFILE_VISITED", "CONNECTION_ACCEPTED"):
            for channel in (None, "EMAIL", "LINKEDIN"):
                variables = {"id": instance_id, "type": event_type, "channel": channel}
                result = (await ok(client, read_key, query, variables))["instance"]["events"]
                want = [
                    i
                    for i in order
                    if event_type in (None, kinds[i][0]) and channel in (None, kinds[i][1])
                ]
                assert ids(result["nodes"]) == want, (key, event_type, channel)
                assert result["totalCount"] == len(want), (key, event_type, channel)
    founders = sid("instance:founders-nov")
    linkedin = await ok(client, read_key, query, {"id": founders, "channel": "LINKEDIN"})
    assert linkedin["instance"]["events"]["totalCount"] == 3


async def test_orphaned_events(seeded: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    now = datetime.now(UTC)
    orphans = [
        (
            "bounced",
            "email",
            "postmark",
            "pm-unknown-1",
            None,
            now - timedelta(hours=1),
            '{"recipient": "nobody@example.com"}',
        ),
        (
            "opened",
            "email",
            "lemlist",
            None,
            2,
            now - timedelta(hours=3),
            '{"lemlist_lead_id": "ld_42", "reason": "no enrollment"}',
        ),
        (
            "connection_accepted",
            "linkedin",
            "phantombuster",
            "pb-9",
            1,
            now - timedelta(hours=2),
            "{}",
        ),
    ]
    for event_type, channel, provider, provider_event_id, step, occurred_at, metadata in orphans:
        await run(
            seeded,
            "INSERT INTO campaign_events (enrollment_id, instance_id, event_type, channel,"
            " provider, provider_event_id, step_number, occurred_at, metadata) VALUES"
            " (NULL, CAST(:i AS uuid), CAST(:t AS event_type), CAST(:c AS channel),"
            " CAST(:p AS provider), :pid, :step, :at, CAST(:m AS jsonb))",
            # The lemlist one names its campaign: an orphan whose instance is known.
            i=sid("instance:tech-q4") if provider == "lemlist" else None,
            t=event_type,
            c=channel,
            p=provider,
            pid=provider_event_id,
            step=step,
            at=occurred_at,
            m=metadata,
        )
    query = f"""{{ orphanedEvents {{ totalCount nodes {{ {EVENT_FIELDS} enrollment {{ id }}
      instance {{ id }} }} edges {{ cursor node {{ id }} }} {PAGE_INFO} }} }}"""
    result = (await ok(client, read_key, query))["orphanedEvents"]
    rows = {r["id"]: r for r in await fetch(seeded, EVENT_SQL + " WHERE enrollment_id IS NULL")}
    order = await newest_first(seeded, "campaign_events", "enrollment_id IS NULL")
    assert len(order) == len(orphans)
    assert ids(result["nodes"]) == order
    assert result["totalCount"] == len(orphans)
    assert [n["providerEventId"] for n in result["nodes"]] == ["pm-unknown-1", "pb-9", None]
    for node in result["nodes"]:
        same(node, event_expected(rows[node["id"]]))
        assert node["enrollment"] is None
    assert [n["instance"] for n in result["nodes"]] == [
        None,
        None,
        {"id": sid("instance:tech-q4")},
    ]
    assert result["nodes"][0]["metadata"] == {"recipient": "nobody@example.com"}
    assert result["nodes"][0]["stepNumber"] is None
    assert result["pageInfo"]["hasNextPage"] is False
    assert result["pageInfo"]["hasPreviousPage"] is False
    assert result["pageInfo"]["startCursor"] == result["edges"][0]["cursor"]
    assert result["pageInfo"]["endCursor"] == result["edges"][-1]["cursor"]
    # Orphans without an instance stay out of every instance's events; none is counted.
    instance_events = f"""query($id: ID!) {{ instance(id: $id) {{
      events(first: 100) {{ nodes {{ id }} }} metrics {{ {METRICS} }}
      performance {{ byStep {{ channel stepNumber metrics {{ {METRICS} }} }} }} }} }}"""
    for key in ("tech-q4", "founders-nov", "warm-draft"):
        data = await ok(client, read_key, instance_events, {"id": sid(f"instance:{key}")})
        assert not set(ids(data["instance"]["events"]["nodes"])) & set(order[:2])
        figures = seed_figures(key)
        assert data["instance"]["metrics"] == figures["metrics"]
        by_step = data["instance"]["performance"]["byStep"]
        assert {(s["channel"], s["stepNumber"]): s["metrics"] for s in by_step} == figures["byStep"]


async def test_no_orphans_is_an_empty_connection(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"{{ orphanedEvents {{ totalCount nodes {{ id }} edges {{ cursor }} {PAGE_INFO} }} }}"
    assert (await ok(client, read_key, query))["orphanedEvents"] == {
        "totalCount": 0,
        "nodes": [],
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }
