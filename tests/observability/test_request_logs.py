"""The logs of real requests, read from the server's captured stderr: one JSON line per request
with its facts, webhook refusals with their reason, and no key, secret, credential or e-mail
address from any request anywhere in the output."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.observability.sql_observer import recording
from tests.observability.conftest import json_lines
from tests.webhooks.helpers import (
    LEMLIST_SECRET,
    PHANTOMBUSTER_SECRET,
    POSTMARK_PASSWORD,
    POSTMARK_USER,
    Step,
    basic_auth,
    count_rows,
    load,
    make_campaign,
    with_enrollment,
)
from tests.webhooks.helpers import (
    event as webhook_event,
)

ADDRESS = "ada.lovelace@analytical.example"
OTHER_ADDRESS = "grace.hopper@navy.example"
TEMPLATE_NAMES = "query TemplateNames { templates(first: 5) { nodes { name } } }"
ENROLL = """
mutation EnrollByAddress($instanceId: ID!, $input: EnrollContactInput!) {
  enrollContact(instanceId: $instanceId, input: $input) { enrollment { id } errors { code } }
}
"""


class Requests:
    """Sends requests with a known X-Request-ID each, remembering what each one carried and
    how long it took as the client saw it (the server's own measure cannot be longer)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.ids: dict[str, str] = {}
        self.elapsed_ms: dict[str, float] = {}

    async def send(
        self, label: str, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        self.ids[label] = f"test-{label}-{uuid.uuid4().hex[:8]}"
        all_headers = {"x-request-id": self.ids[label], **(headers or {})}
        started = time.perf_counter()
        response = await self.http.request(method, path, headers=all_headers, **kw)
        self.elapsed_ms[label] = (time.perf_counter() - started) * 1000
        return response


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_each_request_is_one_line_with_its_facts_and_no_secret(
    served: str,
    app: Starlette,
    engine: AsyncEngine,
    read_key: str,
    write_key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    campaign = await make_campaign(engine, (Step("email", 1, 0),), template_type="email")
    webhook_key = "cak_" + "never-valid-" + uuid.uuid4().hex  # a well-formed, unknown key
    lemlist = with_enrollment(load("lemlist", "emailsOpened"), "lemlist", campaign.enrollment_id)
    lemlist["leadEmail"] = ADDRESS
    postmark = with_enrollment(load("postmark", "Open"), "postmark", campaign.enrollment_id)
    postmark["Recipient"] = OTHER_ADDRESS
    postmark_auth = basic_auth(POSTMARK_USER, POSTMARK_PASSWORD)

    async with httpx.AsyncClient(base_url=served) as http:
        r = Requests(http)
        with recording(app.state.engine) as statements:
            query = await r.send(
                "query", "POST", "/graphql", bearer(read_key), json={"query": TEMPLATE_NAMES}
            )
        assert query.status_code == 200, query.text
        enroll_variables = {
            "instanceId": campaign.instance_id,
            # The address, and the first_name that make_campaign's email steps use.
            "input": {
                "contactId": ADDRESS,
                "metadata": {"email": OTHER_ADDRESS, "first_name": "Grace"},
            },
        }
        with recording(app.state.engine) as mutation_statements:
            mutation = await r.send(
                "mutation",
                "POST",
                "/graphql",
                bearer(write_key),
                json={"query": ENROLL, "variables": enroll_variables},
            )
        assert mutation.json()["data"]["enrollContact"]["errors"] == [], mutation.text
        unknown = await r.send(
            "unknown-key", "POST", "/graphql", bearer(webhook_key), json={"query": TEMPLATE_NAMES}
        )
        assert unknown.status_code == 401
        events_body = webhook_event(campaign.enrollment_id, "opened", step=1)
        events_body["metadata"] = {"recipient": ADDRESS}
        refused_events = await r.send(
            "events-unknown-key", "POST", "/webhooks/events", bearer(webhook_key), json=events_body
        )
        assert refused_events.status_code == 401
        wrong_secret = "wrong-" + LEMLIST_SECRET[::-1]
        refused = await r.send(
            "lemlist-wrong",
            "POST",
            "/webhooks/lemlist",
            params={"secret": wrong_secret},
            json=lemlist,
        )
        assert refused.status_code == 401
        accepted = await r.send(
            "lemlist", "POST", "/webhooks/lemlist", params={"secret": LEMLIST_SECRET}, json=lemlist
        )
        assert accepted.status_code == 200, accepted.text
        stored = await r.send(
            "postmark", "POST", "/webhooks/postmark", postmark_auth, json=postmark
        )
        assert stored.status_code == 200, stored.text
        missing = await r.send("missing", "GET", "/no/such/page")
        assert missing.status_code == 404
    assert await count_rows(engine, "campaign_events") == 2

    output = capsys.readouterr().err
    lines = json_lines(output)  # every line of the production log is JSON
    access = {
        label: [line for line in lines if line.get("request_id") == rid]
        for label, rid in r.ids.items()
    }
    request_lines = {
        label: [line for line in found if line["event"] == "request"]
        for label, found in access.items()
    }
    for label, found in request_lines.items():
        assert len(found) == 1, (label, found)
    line = {label: found[0] for label, found in request_lines.items()}

    expected = {
        "request_id": r.ids["query"],
        "method": "POST",
        "route": "/graphql",
        "status": 200,
        "api_key_name": "test-reader",
        "graphql_operation": "TemplateNames",
        "graphql_type": "query",
        "sql_statements": len(statements),
    }
    assert {name: line["query"].get(name) for name in expected} == expected
    # The count is real: the key lookup, then the templates.
    assert "FROM api_keys" in statements[0], statements
    assert any("FROM campaign_templates" in s for s in statements[1:]), statements
    for label in r.ids:
        assert isinstance(line[label]["duration_ms"], int | float), line[label]
        # Rounded to 0.1 ms, so it may exceed the client's measure by at most 0.05 ms.
        assert 0 <= line[label]["duration_ms"] <= r.elapsed_ms[label] + 0.05, (
            label,
            line[label],
            r.elapsed_ms[label],
        )
        assert line[label]["level"] == "info"
        assert "timestamp" in line[label]
    assert line["mutation"]["graphql_operation"] == "EnrollByAddress"
    assert line["mutation"]["graphql_type"] == "mutation"
    assert line["mutation"]["api_key_name"] == "test-writer"
    assert line["mutation"]["sql_statements"] == len(mutation_statements)
    assert "FROM api_keys" in mutation_statements[0], mutation_statements
    assert any("INSERT INTO enrollments" in s for s in mutation_statements[1:])
    assert (line["unknown-key"]["status"], line["unknown-key"]["api_key_name"]) == (401, None)
    assert line["unknown-key"]["graphql_operation"] is None
    assert (line["lemlist"]["route"], line["lemlist"]["status"]) == ("/webhooks/lemlist", 200)
    assert (line["postmark"]["route"], line["postmark"]["status"]) == ("/webhooks/postmark", 200)
    assert (line["missing"]["route"], line["missing"]["status"]) == ("unmatched", 404)

    refusals = [entry for entry in access["lemlist-wrong"] if entry["event"] == "webhook_refused"]
    assert len(refusals) == 1, access["lemlist-wrong"]
    assert refusals[0]["level"] == "warning"
    assert (refusals[0]["provider"], refusals[0]["status"]) == ("lemlist", 401)
    assert refusals[0]["reason"] == "UNAUTHENTICATED"
    key_refusals = [e for e in access["events-unknown-key"] if e["event"] == "webhook_refused"]
    assert [(e["provider"], e["reason"]) for e in key_refusals] == [("api", "UNAUTHENTICATED")]

    secrets = [
        read_key,
        write_key,
        webhook_key,
        LEMLIST_SECRET,
        wrong_secret,
        PHANTOMBUSTER_SECRET,
        POSTMARK_PASSWORD,
        postmark_auth["authorization"].split()[1],
        ADDRESS,
        OTHER_ADDRESS,
    ]
    for secret in secrets:
        assert secret not in output, secret
