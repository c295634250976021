"""The hub's promises: one load per announced change per instance whatever the number of its
subscribers, a bounded queue per subscriber (one that falls behind is closed and counted), and
nothing lost when the LISTEN connection is killed."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import uuid

import asyncpg
from graphql.execution.collect_fields import FieldDetails
from prometheus_client import REGISTRY
from sqlalchemy import text
from starlette.applications import Starlette

from app.services.live.hub import SLOW_CONSUMER
from tests.live.client import ACTIVITY, connect, registered, until
from tests.live.conftest import BATCH
from tests.live.test_activity_log import INSERT_EVENT
from tests.live.test_subscriptions import post
from tests.test_notifications import dsn_of
from tests.webhooks.helpers import Campaign, event


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_one_load_per_change_whatever_the_number_of_subscribers(
    app: Starlette, base: str, read_key: str, webhook_key: str, campaign: Campaign
) -> None:
    hub = app.state.live_hub
    statements: dict[int, float] = {}
    for subscribers in (1, 3):
        async with connect(base, read_key) as a, connect(base, read_key) as b:
            sockets = [a, a, b][:subscribers]
            for each in sockets:
                await each.subscribe(ACTIVITY, id=campaign.instance_id)
            await until(lambda n=subscribers: hub.subscribers_of(campaign.instance_id) == n)
            loads = hub.flushes
            before = sample("campaign_live_load_statements_total")
            await post(base, webhook_key, event(campaign.enrollment_id, "opened", step=1))
            for each in sockets:
                [item] = await each.activity(1)
                assert item["event"]["eventType"] == "OPENED"
            looks = hub.flushes - loads
            spent = sample("campaign_live_load_statements_total") - before
            # Each look at the log is one statement (more than one look happens when another
            # session's transaction holds the horizon back); the rows are loaded once.
            statements[subscribers] = spent - looks
    # Whatever the number of subscribers: the instance, its counter shards, the event and
    # the enrollment, one statement each.
    assert statements == {1: 4, 3: 4}


async def test_a_subscriber_that_falls_behind_is_closed_and_counted(
    app: Starlette, base: str, read_key: str, webhook_key: str, campaign: Campaign
) -> None:
    # Big messages (each alias repeats the enrollment's 9 kB metadata, uncompressed) and a
    # client that stops reading: the socket's buffers fill, the server's sends wait, the
    # subscription stops taking from its queue, and the hub fills it.
    async with app.state.engine.begin() as connection:
        await connection.execute(
            text("UPDATE enrollments SET metadata = CAST(:m AS jsonb) WHERE instance_id = :i"),
            {"m": json.dumps({"notes": "x" * 9_000}), "i": campaign.instance_id},
        )
    fields = " ".join(f"m{n}: enrollment {{ metadata }}" for n in range(29))
    document = f"subscription($id: ID!) {{ instanceActivity(instanceId: $id) {{ {fields} }} }}"
    port = int(base.rsplit(":", 1)[1])
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
    closed_before = sample("campaign_live_subscribers_closed_total", reason="slow")
    async with connect(base, read_key, sock=raw, max_queue=1, compression=None) as slow:
        await slow.subscribe(document, id=campaign.instance_id)
        await until(lambda: app.state.live_hub.subscribers_of(campaign.instance_id) == 1)
        for _ in range(50):
            if sample("campaign_live_subscribers_closed_total", reason="slow") > closed_before:
                break
            burst = [event(campaign.enrollment_id, "opened", step=1) for _ in range(BATCH)]
            await post(base, webhook_key, *burst)
        await until(
            lambda: (
                sample("campaign_live_subscribers_closed_total", reason="slow") == closed_before + 1
            )
        )
        code, reason = await slow.closed_with()
    assert (code, reason) == (SLOW_CONSUMER, "the subscriber fell behind its queue")
    assert app.state.live_hub.subscribers_of(campaign.instance_id) == 0, "and let go"
    assert campaign.instance_id not in app.state.live_hub.watched()


async def test_a_killed_listen_connection_loses_nothing(
    app: Starlette,
    base: str,
    read_key: str,
    webhook_key: str,
    campaign: Campaign,
    database_url: str,
) -> None:
    """Kill the process's LISTEN connection: a subscriber that stayed connected gets what
    was announced meanwhile from the table, and one that reconnects with ``after`` gets
    exactly what it missed."""
    a = campaign.enrollment_id
    async with connect(base, read_key) as staying:
        await staying.subscribe(ACTIVITY, id=campaign.instance_id)
        async with connect(base, read_key) as leaving:
            await leaving.subscribe(ACTIVITY, id=campaign.instance_id)
            await registered(app.state.live_hub, campaign.instance_id, 2)
            await post(base, webhook_key, event(a, "opened", step=1))
            [first] = await leaving.activity(1)
        assert await staying.activity(1) == [first]

        admin = await asyncpg.connect(dsn_of(database_url))
        try:
            # The kill and two events in one transaction: by its commit the listener is gone,
            # so these NOTIFYs reach nobody; the hub must read them from the table.
            async with admin.transaction():
                # This app's own listener: other apps of the test process listen here too.
                assert await admin.fetchval(
                    "SELECT pg_terminate_backend($1, 5000)", app.state.notifications.server_pid
                )
                for event_type in ("clicked", "replied"):
                    await admin.execute(
                        INSERT_EVENT.replace("'opened'", f"'{event_type}'"),
                        uuid.uuid4(),
                        uuid.UUID(campaign.instance_id),
                        uuid.UUID(a),
                    )
        finally:
            await admin.close()
        missed = await staying.activity(2)
        assert [item["event"]["eventType"] for item in missed] == ["CLICKED", "REPLIED"]

    async with connect(base, read_key) as back:
        await back.subscribe(ACTIVITY, id=campaign.instance_id, after=first["cursor"])
        replayed = await back.activity(2)
        assert [item["cursor"] for item in replayed] == [item["cursor"] for item in missed]
        await post(base, webhook_key, event(a, "delivered", step=1))
        [live] = await back.activity(1)
        assert live["event"]["eventType"] == "DELIVERED"


async def test_subscribers_asking_the_same_share_one_execution_per_event(
    app: Starlette, base: str, read_key: str, webhook_key: str, campaign: Campaign
) -> None:
    """Three subscribers of one instance, two with the same document and variables: an event
    is executed twice (once per distinct document), and the one that did not execute gets
    the very bytes the one that did was sent."""
    other = ACTIVITY.replace("cursor kind", "position: cursor kind")
    async with connect(base, read_key) as a, connect(base, read_key) as b:
        await a.subscribe(ACTIVITY, id=campaign.instance_id)
        await b.subscribe(ACTIVITY, id=campaign.instance_id)
        await b.subscribe(other, id=campaign.instance_id)
        await registered(app.state.live_hub, campaign.instance_id, 3)
        executed = sample("campaign_live_event_results_total", result="executed")
        shared = sample("campaign_live_event_results_total", result="shared")
        await post(base, webhook_key, event(campaign.enrollment_id, "opened", step=1))
        from_a = await a.raw()
        from_b = {json.loads(frame)["id"]: frame for frame in [await b.raw(), await b.raw()]}
    assert from_b["1"] == from_a, "the same document: the same frame, byte for byte"
    assert json.loads(from_a)["payload"]["data"]["instanceActivity"]["event"]["eventType"] == (
        "OPENED"
    )
    answer = json.loads(from_b["2"])["payload"]["data"]["instanceActivity"]
    assert answer["position"] == json.loads(from_a)["payload"]["data"]["instanceActivity"]["cursor"]
    assert sample("campaign_live_event_results_total", result="executed") - executed == 2
    assert sample("campaign_live_event_results_total", result="shared") - shared == 1


async def test_a_long_subscription_keeps_no_memory_per_event(
    app: Starlette, base: str, read_key: str, webhook_key: str, campaign: Campaign
) -> None:
    """What executing an event collects is dropped with it: graphql-core's memo of collected
    subfields, shared by a subscription's events, kept every event's (FieldDetails lists)."""

    def collected() -> int:
        gc.collect()
        return sum(isinstance(o, FieldDetails) for o in gc.get_objects())

    async with connect(base, read_key) as socket:
        await socket.subscribe(ACTIVITY, id=campaign.instance_id)
        await registered(app.state.live_hub, campaign.instance_id, 1)
        counts = []
        for _ in range(3):
            for _ in range(10):
                await post(base, webhook_key, event(campaign.enrollment_id, "opened", step=1))
            await socket.activity(10)
            counts.append(collected())
    assert counts[2] <= counts[0], counts
