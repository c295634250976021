"""/metrics: who may read it, and counters that move by exactly what a scripted sequence of
requests did (read before and after; expected deltas computed from the script)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from starlette.applications import Starlette

from app.cli.csv_import import import_csv
from app.cli.seed import seed, seed_id
from app.domain.enums import Scope
from app.observability import metrics
from app.observability.sql_observer import recording
from app.security.api_keys import create_api_key
from app.settings import ConfigError, Settings, load_settings
from app.web.asgi import create_app
from tests.graphql_client import gql
from tests.webhooks.helpers import LEMLIST_SECRET, load
from tests.webhooks.helpers import event as webhook_event

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

LIST = "query TemplateNames { templates(first: 5) { nodes { name } } }"
CREATE = """mutation CreateInstance($input: CreateInstanceInput!) {
  createInstance(input: $input) { instance { id status } errors { code message } } }"""
TRANSITION = """mutation Transition($id: ID!) {
  %s(id: $id) { instance { id status } errors { code message } } }"""
ENROLL = """mutation EnrollContact($instanceId: ID!, $input: EnrollContactInput!) {
  enrollContact(instanceId: $instanceId, input: $input) { enrollment { id } errors { code } } }"""
BULK = """mutation BulkEnroll($instanceId: ID!, $contacts: [EnrollContactInput!]!) {
  bulkEnroll(instanceId: $instanceId, contacts: $contacts) {
    enrolledCount skippedCount errors { code } } }"""


@pytest.fixture
def client(direct_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Requests run once here: the differential client would run queries twice."""
    return direct_client


def parse(body: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, key: str) -> Samples:
    response = await client.get("/metrics", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_metrics_need_an_admin_key(
    client: httpx.AsyncClient, read_key: str, admin_key: str
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"authorization": "Bearer cak_unknown"})
    assert wrong.status_code == 401
    forbidden = await client.get("/metrics", headers={"authorization": f"Bearer {read_key}"})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == "FORBIDDEN"
    assert "campaign_" not in forbidden.text
    samples = await scrape(client, admin_key)
    assert any(name.startswith("campaign_http_requests") for name, _ in samples)


def _person(contact_id: str) -> dict[str, str]:
    """What the seeded tech template needs of a contact: an e-mail address, and the variables
    its steps use without a fallback."""
    return {"email": f"{contact_id}@example.com", "first_name": "Ada", "company": "Acme"}


async def test_counters_move_by_what_the_requests_did(
    app: Starlette,
    client: httpx.AsyncClient,
    admin_key: str,
    read_key: str,
    write_key: str,
) -> None:
    async with app.state.sessionmaker.begin() as session:
        assert await seed(session)
        webhook_key = await create_api_key(session, "test-hooks", frozenset({Scope.WEBHOOKS}))
    enrollment_id = str(seed_id("enrollment:grace"))
    auth = {"authorization": f"Bearer {webhook_key}"}
    before = await scrape(client, admin_key)

    # GraphQL: every statement of this phase belongs to one of its requests.
    operations: Counter[tuple[str, str]] = Counter()
    graphql_requests = 0

    async def run(key: str, name: str, kind: str, query: str, **variables: Any) -> Any:
        nonlocal graphql_requests
        graphql_requests += 1
        operations[(name, kind)] += 1
        return (await gql(client, key, query, variables))["data"]

    with recording(app.state.engine) as statements:
        for _ in range(3):
            await run(read_key, "TemplateNames", "query", LIST)
        template_id = str(seed_id("template:tech"))
        created = await run(
            write_key,
            "CreateInstance",
            "mutation",
            CREATE,
            # Postmark, the default e-mail provider, needs the sender's address to start.
            input={
                "templateId": template_id,
                "name": "metrics run",
                "providerConfig": {"from_email": "team@example.com"},
            },
        )
        instance_id = created["createInstance"]["instance"]["id"]
        statuses = []
        for field in ("startInstance", "pauseInstance", "resumeInstance", "resumeInstance"):
            data = await run(
                write_key, "Transition", "mutation", TRANSITION % field, id=instance_id
            )
            statuses.append((data[field]["instance"] or {}).get("status"))
        assert statuses == ["ACTIVE", "PAUSED", "ACTIVE", None]  # the last one is refused
        for contact in ("metrics-1", "metrics-2"):
            data = await run(
                write_key,
                "EnrollContact",
                "mutation",
                ENROLL,
                instanceId=instance_id,
                input={"contactId": contact, "metadata": _person(contact)},
            )
            assert data["enrollContact"]["errors"] == []
        contacts = [  # metrics-2 is enrolled
            {"contactId": f"metrics-{n}", "metadata": _person(f"metrics-{n}")} for n in range(2, 7)
        ]
        bulk = await run(
            write_key, "BulkEnroll", "mutation", BULK, instanceId=instance_id, contacts=contacts
        )
        assert bulk["bulkEnroll"]["enrolledCount"] == len(contacts) - 1

    # Webhooks: two linked events and an orphan, then the same three again, then a refusal
    # and an activity of a type that is not tracked.
    batch = {
        "events": [
            webhook_event(enrollment_id, "opened", step=1),
            webhook_event(enrollment_id, "clicked", step=1),
            webhook_event(str(uuid.uuid4()), "opened", step=1),
        ]
    }
    for expected in ({"accepted": 3, "duplicates": 0, "orphaned": 1}, {"duplicates": 3}):
        response = await client.post("/webhooks/events", json=batch, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json().items() >= expected.items()
    refused = await client.post(
        "/webhooks/lemlist",
        params={"secret": "wrong-" + LEMLIST_SECRET},
        json=load("lemlist", "paused"),
    )
    assert refused.status_code == 401
    untracked = load("lemlist", "paused")  # an activity type the service does not track
    ignored = await client.post(
        "/webhooks/lemlist", params={"secret": LEMLIST_SECRET}, json=untracked
    )
    assert ignored.json() == {"accepted": 0, "duplicates": 0, "orphaned": 0, "ignored": 1}
    assert (await client.get("/metrics")).status_code == 401
    assert (
        await client.get("/metrics", headers={"authorization": f"Bearer {read_key}"})
    ).status_code == 403

    after = await scrape(client, admin_key)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "campaign_http_requests_total"
    assert delta(requests, route="/graphql", method="POST", status="200") == graphql_requests
    assert delta(requests, route="/webhooks/events", method="POST", status="200") == 2
    assert delta(requests, route="/webhooks/lemlist", method="POST", status="401") == 1
    assert delta(requests, route="/webhooks/lemlist", method="POST", status="200") == 1
    # The scrape before is counted once it has answered; the failed reads too.
    assert delta(requests, route="/metrics", method="GET", status="200") == 1
    assert delta(requests, route="/metrics", method="GET", status="401") == 1
    assert delta(requests, route="/metrics", method="GET", status="403") == 1

    latency = "campaign_graphql_operation_duration_seconds_count"
    for (name, kind), count in operations.items():
        assert delta(latency, operation=name, type=kind) == count, name
    sql = "campaign_sql_statements_per_request"
    assert delta(f"{sql}_count", route="/graphql") == graphql_requests
    assert delta(f"{sql}_sum", route="/graphql") == len(statements)

    webhooks = "campaign_webhook_events_total"
    assert delta(webhooks, provider="api", outcome="accepted") == 2
    assert delta(webhooks, provider="api", outcome="orphaned") == 1
    assert delta(webhooks, provider="api", outcome="duplicate") == 3
    assert delta(webhooks, provider="lemlist", outcome="refused") == 1
    assert delta(webhooks, provider="lemlist", outcome="ignored") == 1
    assert delta(webhooks, provider="lemlist", outcome="accepted") == 0

    enrolled = "campaign_enrollments_created_total"
    assert delta(enrolled, source="enrollContact") == 2
    assert delta(enrolled, source="bulkEnroll") == len(contacts) - 1
    transitions = "campaign_instance_transitions_total"
    expected_targets = Counter(["draft"] + [s.lower() for s in statuses if s])
    for target in ("draft", "active", "paused", "completed", "failed"):
        assert delta(transitions, to_status=target) == expected_targets[target], target

    # The group commit keeps its connection until it has idled for 250 ms.
    for _ in range(100):
        if pool_state()["in_use"] == 0:
            break
        await asyncio.sleep(0.05)
    pool = pool_state()
    assert pool["in_use"] == 0  # every request, and the group commit, gave its connection back
    assert pool["idle"] >= 1


def pool_state() -> dict[str, float]:
    samples = parse(metrics.render().decode())
    return {
        state: value(samples, "campaign_db_pool_connections", state=state)
        for state in ("in_use", "idle", "capacity")
    }


@pytest.fixture
async def tiny_pool_app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    """One connection and no overflow: a second checkout has to wait."""
    application = create_app(
        settings.model_copy(update={"pool_size": 1, "max_overflow": 0, "pool_timeout_s": 30})
    )
    async with application.router.lifespan_context(application):
        yield application


async def test_the_pool_gauges_show_connections_in_use_idle_and_the_capacity(
    tiny_pool_app: Starlette,
) -> None:
    """A pool at capacity makes the next checkout wait: the gauges show it saturated."""
    engine = tiny_pool_app.state.engine
    got_it = asyncio.Event()

    async def second_checkout() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            got_it.set()

    async with engine.connect() as held:
        await held.execute(text("SELECT 1"))
        waiter = asyncio.create_task(second_checkout())
        await asyncio.sleep(0.2)
        assert pool_state() == {"in_use": 1, "idle": 0, "capacity": 1}
        assert not got_it.is_set()  # saturated: the second checkout waits for the first
    await waiter
    assert got_it.is_set()
    assert pool_state() == {"in_use": 0, "idle": 1, "capacity": 1}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_separate_bind_serves_metrics_without_a_key(
    settings: Settings, clean_db: None
) -> None:
    port = free_port()
    application = create_app(settings.model_copy(update={"metrics_bind": f"127.0.0.1:{port}"}))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient() as http,
    ):
        response = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert "campaign_db_pool_connections" in response.text
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/metrics")


def test_a_malformed_metrics_bind_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAMPAIGN_METRICS_BIND", "no-port-here")
    with pytest.raises(ConfigError, match="CAMPAIGN_METRICS_BIND"):
        load_settings()


async def test_the_csv_command_counts_the_enrollments_it_creates(
    app: Starlette, tmp_path: Path
) -> None:
    async with app.state.sessionmaker.begin() as session:
        assert await seed(session)
    contacts = ["csv-1", "csv-2", "csv-3", "csv-2"]  # one repeat, skipped
    path = tmp_path / "contacts.csv"
    # warm-draft's template sends on LinkedIn only: a profile URL is what a contact needs.
    path.write_text(
        "contact_id,first_name,linkedin_url\n"
        + "".join(f"{c},N,https://www.linkedin.com/in/{c}\n" for c in contacts)
    )
    name = "campaign_enrollments_created_total"
    before = REGISTRY.get_sample_value(name, {"source": "csv"}) or 0.0
    summary = await import_csv(
        app.state.sessionmaker, str(seed_id("instance:warm-draft")), path, batch_size=2
    )
    assert (summary.enrolled, len(summary.skipped)) == (len(set(contacts)), 1)
    assert REGISTRY.get_sample_value(name, {"source": "csv"}) == before + len(set(contacts))


async def test_a_taken_metrics_address_is_logged_and_the_app_still_starts(
    settings: Settings, clean_db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bind = f"127.0.0.1:{taken.getsockname()[1]}"
        application = create_app(settings.model_copy(update={"metrics_bind": bind}))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.get("/healthz")).status_code == 200
    output = capsys.readouterr().err
    assert "metrics_bind_failed" in output
    assert bind in output
