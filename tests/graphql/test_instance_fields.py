"""Instance fields, metrics, performance and transitions, read against the demo data."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from starlette.applications import Starlette

from app.cli.seed import SEED_ACTOR, _instances, _transitions, seed_id
from tests.graphql.seed_reading import (
    DEFS_NOW,
    INSTANCE_FIELDS,
    INSTANCE_SQL,
    METRIC_NAMES,
    METRICS,
    RATES,
    TEMPLATE_FIELDS,
    TEMPLATE_SQL,
    assert_rates,
    fetch,
    ids,
    instance_expected,
    newest_first,
    ok,
    rates_of,
    run,
    same,
    seed_figures,
    sid,
    template_expected,
)

# --------------------------------------------------------------------------- instances


async def test_instances_root_and_filter(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""query($filter: InstanceFilter) {{
      instances(filter: $filter) {{ totalCount nodes {{ {INSTANCE_FIELDS} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, INSTANCE_SQL)}
    order = await newest_first(seeded, "campaign_instances")
    definitions = {str(d["id"]): d for d in _instances(DEFS_NOW)}
    assert set(order) == set(definitions)

    everything = (await ok(client, read_key, query))["instances"]
    assert ids(everything["nodes"]) == order
    assert everything["totalCount"] == len(order)
    for node in everything["nodes"]:
        d = definitions[node["id"]]
        same(node, instance_expected(rows[node["id"]]))
        same(
            node,
            {
                "name": d["name"],
                "status": d["status"].name,
                "providerConfig": d["provider_config"],
                "failureReason": None,
                "completedAt": None,
            },
        )
        assert (node["startedAt"] is None) == ("started_at" not in d)
        assert (node["pausedAt"] is None) == ("paused_at" not in d)

    def expect(pred: Any) -> list[str]:
        return [i for i in order if pred(definitions[i])]

    for status in ("DRAFT", "ACTIVE", "PAUSED", "COMPLETED", "FAILED"):
        result = (await ok(client, read_key, query, {"filter": {"status": status}}))["instances"]
        want = expect(lambda d, s=status: d["status"].name == s)
        assert ids(result["nodes"]) == want, status
        assert result["totalCount"] == len(want)
    for key in ("tech", "founders", "linkedin", "ai"):
        template_id = sid(f"template:{key}")
        result = await ok(client, read_key, query, {"filter": {"templateId": template_id}})
        want = expect(lambda d, t=template_id: str(d["template_id"]) == t)
        assert ids(result["instances"]["nodes"]) == want, key
        assert result["instances"]["totalCount"] == len(want)
    both = {"templateId": sid("template:founders"), "status": "PAUSED"}
    result = (await ok(client, read_key, query, {"filter": both}))["instances"]
    assert ids(result["nodes"]) == [sid("instance:founders-nov")]
    both["status"] = "ACTIVE"
    result = (await ok(client, read_key, query, {"filter": both}))["instances"]
    assert result == {"totalCount": 0, "nodes": []}
    unknown = {"templateId": str(uuid.uuid4())}
    result = (await ok(client, read_key, query, {"filter": unknown}))["instances"]
    assert result == {"totalCount": 0, "nodes": []}


async def test_instance_by_id_reads_every_scalar(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    # Give the instances the statuses the seed lacks: completed, and failed with a reason.
    await run(
        seeded,
        "UPDATE campaign_instances SET status = 'completed', completed_at = now() - interval '1 h'"
        " WHERE id = CAST(:id AS uuid)",
        id=sid("instance:founders-nov"),
    )
    await run(
        seeded,
        "UPDATE campaign_instances SET status = 'failed', failure_reason = :reason,"
        ' provider_config = \'{"nested": {"list": [1, 2.5, null, true]}, "s": "x"}\''
        " WHERE id = CAST(:id AS uuid)",
        reason="LinkedIn session expired",
        id=sid("instance:warm-draft"),
    )
    query = f"""query($id: ID!) {{ instance(id: $id) {{ {INSTANCE_FIELDS}
      template {{ {TEMPLATE_FIELDS} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, INSTANCE_SQL)}
    templates = {r["id"]: r for r in await fetch(seeded, TEMPLATE_SQL)}
    for d in _instances(DEFS_NOW):
        node = (await ok(client, read_key, query, {"id": str(d["id"])}))["instance"]
        row = rows[str(d["id"])]
        same(node, instance_expected(row))
        same(node["template"], template_expected(templates[str(d["template_id"])]))
    founders = await ok(client, read_key, query, {"id": sid("instance:founders-nov")})
    assert founders["instance"]["status"] == "COMPLETED"
    assert founders["instance"]["completedAt"] is not None
    warm = (await ok(client, read_key, query, {"id": sid("instance:warm-draft")}))["instance"]
    assert warm["status"] == "FAILED"
    assert warm["failureReason"] == "LinkedIn session expired"
    assert warm["providerConfig"] == {"nested": {"list": [1, 2.5, None, True]}, "s": "x"}
    assert warm["template"]["id"] == sid("template:linkedin")
    for unknown in (sid("instance:nope"), sid("template:tech")):
        assert await ok(client, read_key, query, {"id": unknown}) == {"instance": None}


PERFORMANCE_QUERY = f"""query($id: ID!) {{ instance(id: $id) {{
  metrics {{ {METRICS} }}
  performance {{
    metrics {{ {METRICS} }} rates {{ {RATES} }}
    byStep {{ channel stepNumber metrics {{ {METRICS} }} rates {{ {RATES} }} }}
    byChannel {{ channel metrics {{ {METRICS} }} rates {{ {RATES} }} }}
  }} }} }}"""

COUNTERS_SQL = (
    "SELECT i.total_enrolled AS enrolled,"
    " i.total_sent + coalesce(sum(s.sent), 0) AS sent,"
    " i.total_delivered + coalesce(sum(s.delivered), 0) AS delivered,"
    " i.total_opened + coalesce(sum(s.opened), 0) AS opened,"
    " i.total_clicked + coalesce(sum(s.clicked), 0) AS clicked,"
    " i.total_replied + coalesce(sum(s.replied), 0) AS replied,"
    " i.total_bounced + coalesce(sum(s.bounced), 0) AS bounced,"
    " i.total_unsubscribed + coalesce(sum(s.unsubscribed), 0) AS unsubscribed"
    " FROM campaign_instances i LEFT JOIN instance_counter_shards s ON s.instance_id = i.id"
    " WHERE i.id = CAST(:id AS uuid) GROUP BY i.id"
)


async def stored_counters(app: Starlette, instance_id: str) -> dict[str, int]:
    row = (await fetch(app, COUNTERS_SQL, id=instance_id))[0]
    return {name: int(row[name]) for name in METRIC_NAMES}


async def test_metrics_and_performance(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    for instance_key in ("tech-q4", "founders-nov", "warm-draft"):
        await _check_figures(seeded, client, read_key, instance_key)


async def _check_figures(
    app: Starlette, client: httpx.AsyncClient, read_key: str, instance_key: str
) -> None:
    instance_id = sid(f"instance:{instance_key}")
    want = seed_figures(instance_key)
    counters = await stored_counters(app, instance_id)
    assert counters == want["metrics"], "the seed's stored counters disagree with its events"

    instance = (await ok(client, read_key, PERFORMANCE_QUERY, {"id": instance_id}))["instance"]
    performance = instance["performance"]
    assert instance["metrics"] == want["metrics"]
    assert performance["metrics"] == want["metrics"]
    assert_rates(performance["rates"], rates_of(want["metrics"]))

    by_step = {(s["channel"], s["stepNumber"]): s for s in performance["byStep"]}
    assert len(by_step) == len(performance["byStep"]), "a (channel, step) is listed twice"
    assert set(by_step) == set(want["byStep"])
    for key, metrics in want["byStep"].items():
        assert by_step[key]["metrics"] == metrics, key
        assert_rates(by_step[key]["rates"], rates_of(metrics))

    by_channel = {c["channel"]: c for c in performance["byChannel"]}
    assert len(by_channel) == len(performance["byChannel"]), "a channel is listed twice"
    assert set(by_channel) == set(want["byChannel"])
    for channel, metrics in want["byChannel"].items():
        assert by_channel[channel]["metrics"] == metrics, channel
        assert_rates(by_channel[channel]["rates"], rates_of(metrics))


async def test_figures_of_the_seed_cover_the_interesting_cases() -> None:
    """Guards the test above: it must see non-trivial rates and zero denominators."""
    tech, founders, draft = (seed_figures(k) for k in ("tech-q4", "founders-nov", "warm-draft"))
    assert 0 < rates_of(tech["metrics"])["openRate"] < 1
    assert rates_of(tech["metrics"])["replyRate"] > 0
    assert founders["metrics"]["delivered"] == 0 < founders["metrics"]["opened"]
    assert rates_of(founders["metrics"])["openRate"] == 0.0
    assert set(founders["byChannel"]) == {"EMAIL", "LINKEDIN"}
    assert draft["metrics"]["sent"] == 0
    assert not draft["byStep"]


async def test_metrics_include_pending_shard_increments(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    instance_id = sid("instance:tech-q4")
    await run(
        seeded,
        "INSERT INTO instance_counter_shards (instance_id, shard, sent, delivered, opened,"
        " clicked, replied, bounced, unsubscribed) VALUES"
        " (CAST(:id AS uuid), 0, 2, 1, 1, 0, 0, 1, 0),"
        " (CAST(:id AS uuid), 1, 1, 1, 0, 1, 1, 0, 1)",
        id=instance_id,
    )
    counters = await stored_counters(seeded, instance_id)
    seeded_counters = seed_figures("tech-q4")["metrics"]
    assert counters["sent"] == seeded_counters["sent"] + 3  # the shards really add something
    instance = (await ok(client, read_key, PERFORMANCE_QUERY, {"id": instance_id}))["instance"]
    assert instance["metrics"] == counters
    assert instance["performance"]["metrics"] == counters
    assert_rates(instance["performance"]["rates"], rates_of(counters))
    # Per-step figures come from the events, which the shards do not change.
    by_step = {
        (s["channel"], s["stepNumber"]): s["metrics"] for s in instance["performance"]["byStep"]
    }
    assert by_step == seed_figures("tech-q4")["byStep"]


async def test_transitions_oldest_first(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    await run(
        seeded,
        "UPDATE instance_transitions SET reason = 'holiday freeze', actor = 'ops@example.com'"
        " WHERE id = CAST(:id AS uuid)",
        id=sid("transition:founders-nov:paused"),
    )
    query = """query($id: ID!) { instance(id: $id) {
      transitions { fromStatus toStatus actor reason at } } }"""
    rows = await fetch(
        seeded,
        "SELECT id::text AS id, instance_id::text AS instance_id, at FROM instance_transitions",
    )
    at = {r["id"]: r["at"] for r in rows}
    definitions = _transitions(DEFS_NOW)
    for instance in _instances(DEFS_NOW):
        defs = [d for d in definitions if d["instance_id"] == instance["id"]]
        defs.sort(key=lambda d: at[str(d["id"])])  # oldest first
        assert len({at[str(d["id"])] for d in defs}) == len(defs)  # no ties in the seed
        got = (await ok(client, read_key, query, {"id": str(instance["id"])}))["instance"]
        assert len(got["transitions"]) == len(defs)
        for node, d in zip(got["transitions"], defs, strict=True):
            changed = d["id"] == seed_id("transition:founders-nov:paused")
            same(
                node,
                {
                    "fromStatus": d["from_status"].name if d["from_status"] else None,
                    "toStatus": d["to_status"].name,
                    "actor": "ops@example.com" if changed else SEED_ACTOR,
                    "reason": "holiday freeze" if changed else None,
                    "at": at[str(d["id"])],
                },
            )
    founders = await ok(client, read_key, query, {"id": sid("instance:founders-nov")})
    assert [(t["fromStatus"], t["toStatus"]) for t in founders["instance"]["transitions"]] == [
        (None, "DRAFT"),
        ("DRAFT", "ACTIVE"),
        ("ACTIVE", "PAUSED"),
    ]
