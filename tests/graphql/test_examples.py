"""Every operation in examples/ runs against the seed data and answers what the seed holds."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
from graphql import build_schema as build_sdl_schema
from graphql import parse, validate
from starlette.applications import Starlette

from app.cli.seed import _enrollments, _events, _instances, _templates, seed_id
from schema import build_schema
from testkit.examples import EXAMPLES, example, operations

DEFS_NOW = datetime.now(UTC)  # the seed's helpers only use it to place timestamps
RUN_HERE = {
    "Dashboard",
    "InstanceDetail",
    "CreateInstance",
    "StartInstance",
    "PauseInstance",
    "ResumeInstance",
    "CompleteInstance",
    "FailInstance",
    "BulkEnroll",
    "ClassifyReply",
    "ReplySentiments",
}


async def run(
    client: httpx.AsyncClient, key: str, name: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Send the example file holding operation ``name``, selecting it by name."""
    file_name, _ = operations()[name]
    response = await client.post(
        "/graphql",
        json={"query": example(file_name), "operationName": name, "variables": variables or {}},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]


def test_every_example_is_valid_and_run_by_this_module() -> None:
    schema = build_sdl_schema(build_schema().as_str())
    for path in EXAMPLES.glob("*.graphql"):
        assert validate(schema, parse(path.read_text())) == [], path.name
    assert set(operations()) == RUN_HERE
    assert {file for file, _ in operations().values()} == {
        "dashboard.graphql",
        "instance_detail.graphql",
        "lifecycle.graphql",
        "bulk_enroll.graphql",
        "replies.graphql",
    }


async def test_dashboard_shows_the_seeded_templates_and_campaigns(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    data = await run(client, read_key, "Dashboard")
    templates = data["templates"]["nodes"]
    active = [t for t in _templates() if t.get("is_active", True)]
    assert {t["name"] for t in templates} == {t["name"] for t in active}
    assert data["templates"]["totalCount"] == len(active)
    instances = {i["id"]: i for t in templates for i in t["instances"]["nodes"]}
    assert set(instances) == {str(i["id"]) for i in _instances(DEFS_NOW)}
    enrollments = {e["id"] for i in instances.values() for e in i["enrollments"]["nodes"]}
    assert enrollments == {str(e["id"]) for e in _enrollments(DEFS_NOW)}


async def test_instance_detail_shows_its_enrollments_and_events(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    instance_id = seed_id("instance:tech-q4")
    data = await run(client, read_key, "InstanceDetail", {"id": str(instance_id)})
    instance = data["instance"]
    seeded_instance = next(i for i in _instances(DEFS_NOW) if i["id"] == instance_id)
    assert (instance["name"], instance["status"]) == (seeded_instance["name"], "ACTIVE")
    mine = [e for e in _enrollments(DEFS_NOW) if e["instance_id"] == instance_id]
    nodes = instance["enrollments"]["nodes"]
    assert instance["enrollments"]["totalCount"] == len(mine)
    assert {n["contactId"] for n in nodes} == {e["contact_id"] for e in mine}
    events_per_enrollment = Counter(str(e["enrollment_id"]) for e in _events(DEFS_NOW))
    for node in nodes:
        assert len(node["events"]["nodes"]) == events_per_enrollment[node["id"]]
    assert instance["metrics"]["enrolled"] == len(mine)


async def test_lifecycle_and_bulk_enroll_operations_walk_an_instance_through_its_life(
    seeded: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = str(seed_id("template:tech"))
    # An EMAIL template: Postmark, the default provider, needs the sender's address to start.
    config = {"from_email": "team@example.com"}
    created = await run(
        client,
        write_key,
        "CreateInstance",
        {
            "input": {
                "templateId": template_id,
                "name": "From the examples",
                "providerConfig": config,
            }
        },
    )
    payload = created["createInstance"]
    assert payload["errors"] == []
    assert payload["instance"]["status"] == "DRAFT"
    assert payload["instance"]["template"]["id"] == template_id
    instance_id = payload["instance"]["id"]

    # The seeded steps use {{first_name}} and {{company}} without a fallback.
    contacts = [
        {
            "contactId": f"crm-{n}",
            "metadata": {"email": f"n{n}@example.com", "first_name": f"N{n}", "company": f"C{n}"},
        }
        for n in range(3)
    ]
    without_company = {
        "contactId": "crm-x",
        "metadata": {"email": "x@example.com", "first_name": "X"},
    }
    bulk = await run(
        client,
        write_key,
        "BulkEnroll",
        {"instanceId": instance_id, "contacts": [*contacts, contacts[0], without_company]},
    )
    assert bulk["bulkEnroll"]["errors"] == []
    assert (bulk["bulkEnroll"]["enrolledCount"], bulk["bulkEnroll"]["skippedCount"]) == (3, 2)
    assert {e["contactId"]: e["metadata"] for e in bulk["bulkEnroll"]["enrollments"]} == {
        c["contactId"]: c["metadata"] for c in contacts
    }
    skipped = [(s["index"], s["contactId"], s["reason"]) for s in bulk["bulkEnroll"]["skipped"]]
    assert skipped == [(3, "crm-0", "DUPLICATE_IN_REQUEST"), (4, "crm-x", "VARIABLE_MISSING")]

    walk = [
        ("StartInstance", "startInstance", "ACTIVE"),
        ("PauseInstance", "pauseInstance", "PAUSED"),
        ("ResumeInstance", "resumeInstance", "ACTIVE"),
        ("CompleteInstance", "completeInstance", "COMPLETED"),
    ]
    for operation, field, status in walk:
        answer = (await run(client, write_key, operation, {"id": instance_id}))[field]
        assert answer["errors"] == [], operation
        assert answer["instance"]["status"] == status, operation
    history = [(t["fromStatus"], t["toStatus"]) for t in answer["instance"]["transitions"]]
    assert history == [
        (None, "DRAFT"),
        ("DRAFT", "ACTIVE"),
        ("ACTIVE", "PAUSED"),
        ("PAUSED", "ACTIVE"),
        ("ACTIVE", "COMPLETED"),
    ]

    draft_id = str(seed_id("instance:warm-draft"))
    reason = "the LinkedIn account was restricted"
    failed = (await run(client, write_key, "FailInstance", {"id": draft_id, "reason": reason}))[
        "failInstance"
    ]
    assert failed["errors"] == []
    assert (failed["instance"]["status"], failed["instance"]["failureReason"]) == (
        "FAILED",
        reason,
    )


async def test_a_seeded_reply_classified_shows_in_the_instance_figures(
    seeded: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    instance_id = str(seed_id("instance:tech-q4"))
    replies = [e for e in _events(DEFS_NOW) if e["event_type"] == "replied"]
    mine = [e for e in replies if str(e["instance_id"]) == instance_id]
    before = await run(client, write_key, "ReplySentiments", {"id": instance_id})
    assert before["instance"]["performance"]["replySentiment"]["positive"] == 0
    reply_id = str(mine[0]["id"])
    classified = await run(
        client, write_key, "ClassifyReply", {"eventId": reply_id, "sentiment": "INTERESTED"}
    )
    payload = classified["classifyReply"]
    assert payload["errors"] == []
    assert (payload["event"]["id"], payload["event"]["sentiment"]) == (reply_id, "INTERESTED")
    assert payload["enrollment"]["sentiment"] == "INTERESTED"
    after = await run(client, write_key, "ReplySentiments", {"id": instance_id})
    figures = after["instance"]["performance"]["replySentiment"]
    assert (figures["positive"], figures["negative"]) == (1, 0)
    assert figures["positiveRate"] == 1 / len(mine)
