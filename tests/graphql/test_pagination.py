"""Keyset pagination: every connection walked to its end, page by page, against SQL.

Each walk follows ``after = pageInfo.endCursor`` with a small ``first`` and checks that every row
comes exactly once in newest-first order (``created_at DESC, id DESC``; events by
``occurred_at DESC, id DESC``), that ``totalCount`` and ``pageInfo`` are right on every page, and
that the cursor of every edge continues right after that edge.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from testkit.factories import Shape
from tests.graphql.pagination_walk import (
    CONNECTION,
    PAGE,
    SHAPE,
    Extract,
    build,
    expected_order,
    fetch,
    ok,
    one_id,
    path,
    run,
    walk,
)

# --------------------------------------------------------------------------- root connections


async def test_root_templates(app: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    engine = app.state.engine
    await build(engine)
    expected = await expected_order(engine, "campaign_templates")
    assert len(expected) == SHAPE.templates
    query = f"""query($first: Int, $after: String) {{
      templates(first: $first, after: $after) {{ {CONNECTION} }} }}"""
    await walk(client, read_key, query, path("templates"), expected)
    # A filtered walk: archived templates leave the default list and its count.
    archived = expected[1::2]
    await run(
        engine,
        "UPDATE campaign_templates SET is_active = false WHERE id = ANY(CAST(:ids AS uuid[]))",
        ids=archived,
    )
    active = [i for i in expected if i not in archived]
    await walk(client, read_key, query, path("templates"), active, check_edge_cursors=False)
    query = f"""query($first: Int, $after: String) {{ templates(first: $first, after: $after,
      filter: {{isActive: false}}) {{ {CONNECTION} }} }}"""
    await walk(client, read_key, query, path("templates"), archived, first=2)


async def test_root_instances(app: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    engine = app.state.engine
    await build(engine)
    expected = await expected_order(engine, "campaign_instances")
    assert len(expected) == SHAPE.templates * SHAPE.instances_per_template
    # The factory gives instance g of every template the same created_at: ties by the dozen.
    ties = await fetch(engine, "SELECT count(DISTINCT created_at) AS n FROM campaign_instances")
    assert ties[0]["n"] < len(expected)
    query = f"""query($first: Int, $after: String) {{
      instances(first: $first, after: $after) {{ {CONNECTION} }} }}"""
    await walk(client, read_key, query, path("instances"), expected)
    # Filtered by template and by status.
    template_id = await one_id(engine, "SELECT id FROM campaign_templates ORDER BY name LIMIT 1")
    await run(
        engine,
        "UPDATE campaign_instances SET status = 'paused', paused_at = now()"
        " WHERE id = ANY(CAST(:ids AS uuid[]))",
        ids=expected[::4],
    )
    query = f"""query($first: Int, $after: String, $filter: InstanceFilter) {{
      instances(first: $first, after: $after, filter: $filter) {{ {CONNECTION} }} }}"""
    by_template = await expected_order(
        engine, "campaign_instances", "template_id = CAST(:t AS uuid)", t=template_id
    )
    assert len(by_template) == SHAPE.instances_per_template
    await walk(
        client,
        read_key,
        query,
        path("instances"),
        by_template,
        {"filter": {"templateId": template_id}},
    )
    paused = await expected_order(engine, "campaign_instances", "status = 'paused'")
    assert paused == expected[::4]
    await walk(
        client,
        read_key,
        query,
        path("instances"),
        paused,
        {"filter": {"status": "PAUSED"}},
        check_edge_cursors=False,
    )


async def insert_orphans(engine: AsyncEngine, count: int, same_time_from: int) -> None:
    """``count`` orphans an hour apart, the ones from ``same_time_from`` on sharing one time."""
    now = datetime.now(UTC)
    for n in range(count):
        hours = n if n < same_time_from else same_time_from
        await run(
            engine,
            "INSERT INTO campaign_events (enrollment_id, instance_id, event_type, channel,"
            " provider, provider_event_id, occurred_at, metadata) VALUES (NULL, NULL, 'opened',"
            " 'email', 'postmark', :pid, :at, CAST(:m AS jsonb))",
            pid=f"orphan-{n}",
            at=now - timedelta(hours=hours),
            m=f'{{"message_id": "m-{n}"}}',
        )


async def test_orphaned_events(app: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    engine = app.state.engine
    await build(engine, Shape(2, 2, 3, 4))
    await insert_orphans(engine, 11, same_time_from=6)
    expected = await expected_order(engine, "campaign_events", "enrollment_id IS NULL")
    assert len(expected) == 11
    query = f"""query($first: Int, $after: String) {{
      orphanedEvents(first: $first, after: $after) {{ {CONNECTION} }} }}"""
    await walk(client, read_key, query, path("orphanedEvents"), expected)


# --------------------------------------------------------------------------- nested connections


async def test_template_instances(app: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    engine = app.state.engine
    await build(engine)
    query = f"""query($id: ID!, $first: Int, $after: String) {{ template(id: $id) {{
      instances(first: $first, after: $after) {{ {CONNECTION} }} }} }}"""
    templates = await expected_order(engine, "campaign_templates")
    for n, template_id in enumerate(templates):
        expected = await expected_order(
            engine, "campaign_instances", "template_id = CAST(:t AS uuid)", t=template_id
        )
        assert len(expected) == SHAPE.instances_per_template
        await walk(
            client,
            read_key,
            query,
            path("template", "instances"),
            expected,
            {"id": template_id},
            first=2 if n % 2 else PAGE,
            check_edge_cursors=n < 2,
        )
    # With a status filter.
    template_id = templates[0]
    all_instances = await expected_order(
        engine, "campaign_instances", "template_id = CAST(:t AS uuid)", t=template_id
    )
    await run(
        engine,
        "UPDATE campaign_instances SET status = 'completed', completed_at = now()"
        " WHERE id = ANY(CAST(:ids AS uuid[]))",
        ids=all_instances[1:4],
    )
    query = f"""query($id: ID!, $first: Int, $after: String) {{ template(id: $id) {{
      instances(first: $first, after: $after, status: COMPLETED) {{ {CONNECTION} }} }} }}"""
    await walk(
        client,
        read_key,
        query,
        path("template", "instances"),
        all_instances[1:4],
        {"id": template_id},
        first=2,
    )


async def test_instance_enrollments(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    engine = app.state.engine
    await build(engine)
    query = f"""query($id: ID!, $first: Int, $after: String) {{ instance(id: $id) {{
      enrollments(first: $first, after: $after) {{ {CONNECTION} }} }} }}"""
    instances = await expected_order(engine, "campaign_instances")
    for instance_id in (instances[0], instances[17], instances[-1]):
        expected = await expected_order(
            engine, "enrollments", "instance_id = CAST(:i AS uuid)", i=instance_id
        )
        assert len(expected) == SHAPE.enrollments_per_instance
        await walk(
            client, read_key, query, path("instance", "enrollments"), expected, {"id": instance_id}
        )
    # With a status filter.
    instance_id = instances[5]
    everyone = await expected_order(
        engine, "enrollments", "instance_id = CAST(:i AS uuid)", i=instance_id
    )
    await run(
        engine,
        "UPDATE enrollments SET status = 'paused' WHERE id = ANY(CAST(:ids AS uuid[]))",
        ids=everyone[::2],
    )
    query = f"""query($id: ID!, $first: Int, $after: String) {{ instance(id: $id) {{
      enrollments(first: $first, after: $after, status: PAUSED) {{ {CONNECTION} }} }} }}"""
    await walk(
        client, read_key, query, path("instance", "enrollments"), everyone[::2], {"id": instance_id}
    )


async def test_instance_events(app: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    engine = app.state.engine
    await build(engine)
    instance_id = (await expected_order(engine, "campaign_instances"))[3]
    expected = await expected_order(
        engine, "campaign_events", "instance_id = CAST(:i AS uuid)", i=instance_id
    )
    assert len(expected) == SHAPE.enrollments_per_instance * SHAPE.events_per_enrollment
    # Event g of every enrollment shares occurred_at: a long walk through ties.
    query = f"""query($id: ID!, $first: Int, $after: String) {{ instance(id: $id) {{
      events(first: $first, after: $after) {{ {CONNECTION} }} }} }}"""
    await walk(client, read_key, query, path("instance", "events"), expected, {"id": instance_id})
    # Filtered by type and channel.
    opened = await expected_order(
        engine,
        "campaign_events",
        "instance_id = CAST(:i AS uuid) AND event_type = 'opened'",
        i=instance_id,
    )
    assert 0 < len(opened) < len(expected)
    query = f"""query($id: ID!, $first: Int, $after: String) {{ instance(id: $id) {{
      events(first: $first, after: $after, eventType: OPENED, channel: EMAIL) {{ {CONNECTION} }}
    }} }}"""
    await walk(
        client,
        read_key,
        query,
        path("instance", "events"),
        opened,
        {"id": instance_id},
        first=7,
        check_edge_cursors=False,
    )


async def test_enrollment_events(app: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    engine = app.state.engine
    await build(engine)
    query = f"""query($id: ID!, $first: Int, $after: String) {{ enrollment(id: $id) {{
      events(first: $first, after: $after) {{ {CONNECTION} }} }} }}"""
    enrollments = await expected_order(engine, "enrollments")
    for enrollment_id in (enrollments[0], enrollments[200], enrollments[-1]):
        expected = await expected_order(
            engine, "campaign_events", "enrollment_id = CAST(:e AS uuid)", e=enrollment_id
        )
        assert len(expected) == SHAPE.events_per_enrollment
        await walk(
            client, read_key, query, path("enrollment", "events"), expected, {"id": enrollment_id}
        )
    enrollment_id = enrollments[1]
    clicked = await expected_order(
        engine,
        "campaign_events",
        "enrollment_id = CAST(:e AS uuid) AND event_type = 'opened'",
        e=enrollment_id,
    )
    assert len(clicked) >= 3
    query = f"""query($id: ID!, $first: Int, $after: String) {{ enrollment(id: $id) {{
      events(first: $first, after: $after, eventType: OPENED) {{ {CONNECTION} }} }} }}"""
    await walk(
        client,
        read_key,
        query,
        path("enrollment", "events"),
        clicked,
        {"id": enrollment_id},
        first=2,
    )


NESTED_SHAPE = Shape(
    templates=4, instances_per_template=3, enrollments_per_instance=8, events_per_enrollment=1
)
NESTED = f"""query($first: Int, $after: String) {{ templates(first: 10) {{ nodes {{ id
  instances(first: 10) {{ nodes {{ id
    enrollments(first: $first, after: $after) {{ {CONNECTION} }} }} }} }} }} }}"""


async def test_nested_enrollments_of_each_instance(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """The enrollments of every instance, walked through one query over all templates: the
    batched per-parent pages continue each instance's list from the cursor given."""
    engine = app.state.engine
    shape = NESTED_SHAPE
    await build(engine, shape)
    instances = await fetch(
        engine, "SELECT id::text AS id, template_id::text AS template_id FROM campaign_instances"
    )
    assert len(instances) == shape.templates * shape.instances_per_template

    def of(instance: dict[str, Any]) -> Extract:
        def extract(data: dict[str, Any]) -> dict[str, Any]:
            templates = {t["id"]: t for t in data["templates"]["nodes"]}
            assert len(templates) == shape.templates
            nodes = templates[instance["template_id"]]["instances"]["nodes"]
            assert len(nodes) == shape.instances_per_template
            (match,) = [n for n in nodes if n["id"] == instance["id"]]
            connection: dict[str, Any] = match["enrollments"]
            return connection

        return extract

    first_pages = await ok(client, read_key, NESTED, {"first": PAGE, "after": None})
    for n, instance in enumerate(instances):
        expected = await expected_order(
            engine, "enrollments", "instance_id = CAST(:i AS uuid)", i=instance["id"]
        )
        assert len(expected) == shape.enrollments_per_instance
        # The first page of every instance comes in one response.
        page = of(instance)(first_pages)
        assert [node["id"] for node in page["nodes"]] == expected[:PAGE]
        assert page["totalCount"] == len(expected)
        assert page["pageInfo"]["hasNextPage"] is True
        assert page["pageInfo"]["hasPreviousPage"] is False
        await walk(client, read_key, NESTED, of(instance), expected, check_edge_cursors=n % 4 == 0)


ALIASES = """query($after: String) { instances(first: 100) { nodes { id
  two: enrollments(first: 2) { totalCount nodes { id } pageInfo { hasNextPage } }
  paused: enrollments(first: 3, status: PAUSED) { totalCount nodes { id } }
  rest: enrollments(first: 100, after: $after) { totalCount nodes { id }
    pageInfo { hasNextPage hasPreviousPage } }
  opened: events(first: 4, eventType: OPENED) { totalCount nodes { id } }
  all: events(first: 5) { totalCount nodes { id } }
} } }"""


async def test_one_relation_with_different_arguments_in_one_query(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """Aliases of one relation with different first/after/filters, over many parents at once:
    every parent gets the page its own arguments ask for."""
    engine = app.state.engine
    await build(engine, NESTED_SHAPE)
    instances = await expected_order(engine, "campaign_instances")
    await run(
        engine,
        "UPDATE enrollments SET status = 'paused' WHERE id IN (SELECT id FROM enrollments"
        " WHERE instance_id = ANY(CAST(:ids AS uuid[])) AND contact_id ~ '-[1357]$')",
        ids=instances[::2],
    )
    # A cursor from the middle of the first instance's enrollments.
    first_enrollments = await expected_order(
        engine, "enrollments", "instance_id = CAST(:i AS uuid)", i=instances[0]
    )
    page = await ok(
        client,
        read_key,
        """query($id: ID!) { instance(id: $id) { enrollments(first: 4) {
          edges { cursor node { id } } } } }""",
        {"id": instances[0]},
    )
    edges = page["instance"]["enrollments"]["edges"]
    assert [e["node"]["id"] for e in edges] == first_enrollments[:4]
    data = await ok(client, read_key, ALIASES, {"after": edges[-1]["cursor"]})
    nodes = {n["id"]: n for n in data["instances"]["nodes"]}
    assert list(nodes) == instances
    for instance_id, node in nodes.items():
        where = "instance_id = CAST(:i AS uuid)"
        enrollments = await expected_order(engine, "enrollments", where, i=instance_id)
        paused = await expected_order(
            engine, "enrollments", where + " AND status = 'paused'", i=instance_id
        )
        events = await expected_order(engine, "campaign_events", where, i=instance_id)
        opened = await expected_order(
            engine, "campaign_events", where + " AND event_type = 'opened'", i=instance_id
        )
        assert [n["id"] for n in node["two"]["nodes"]] == enrollments[:2]
        assert node["two"]["totalCount"] == len(enrollments)
        assert node["two"]["pageInfo"]["hasNextPage"] is True
        assert [n["id"] for n in node["paused"]["nodes"]] == paused[:3]
        assert node["paused"]["totalCount"] == len(paused)
        assert [n["id"] for n in node["all"]["nodes"]] == events[:5]
        assert node["all"]["totalCount"] == len(events)
        assert [n["id"] for n in node["opened"]["nodes"]] == opened[:4]
        assert node["opened"]["totalCount"] == len(opened)
        assert node["rest"]["totalCount"] == len(enrollments)
        assert node["rest"]["pageInfo"]["hasPreviousPage"] is True
        assert node["rest"]["pageInfo"]["hasNextPage"] is False
        if instance_id == instances[0]:
            assert [n["id"] for n in node["rest"]["nodes"]] == first_enrollments[4:]
    assert any(nodes[i]["paused"]["totalCount"] for i in instances)
    assert not all(nodes[i]["paused"]["totalCount"] for i in instances)


# --------------------------------------------------------------------------- ties


async def tie(engine: AsyncEngine, table: str, row_ids: list[str]) -> None:
    """Give ``row_ids`` the sort time of the first of them."""
    sort = "occurred_at" if table == "campaign_events" else "created_at"
    await run(
        engine,
        f"UPDATE {table} SET {sort} = (SELECT {sort} FROM {table} WHERE id = CAST(:first AS uuid))"
        " WHERE id = ANY(CAST(:ids AS uuid[]))",
        first=row_ids[0],
        ids=row_ids,
    )


def assert_tie_group(order: list[str], group_ids: list[str]) -> None:
    """The tied rows sit together, ordered by id alone, across a page boundary."""
    start = min(order.index(i) for i in group_ids)
    group = order[start : start + len(group_ids)]
    assert set(group) == set(group_ids)
    assert group == sorted(group, key=uuid.UUID, reverse=True)
    assert start // PAGE != (start + len(group) - 1) // PAGE  # spans more than one page


async def test_equal_timestamps_are_broken_by_id(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    """Rows sharing their sort time are ordered by id, across page boundaries, none lost or
    repeated."""
    engine = app.state.engine
    await build(engine)

    templates = await expected_order(engine, "campaign_templates")
    await tie(engine, "campaign_templates", templates[1:6])
    tied = await expected_order(engine, "campaign_templates")
    assert_tie_group(tied, templates[1:6])
    query = f"""query($first: Int, $after: String) {{
      templates(first: $first, after: $after) {{ {CONNECTION} }} }}"""
    await walk(client, read_key, query, path("templates"), tied)

    instance_id = (await expected_order(engine, "campaign_instances"))[0]
    enrollments = await expected_order(
        engine, "enrollments", "instance_id = CAST(:i AS uuid)", i=instance_id
    )
    await tie(engine, "enrollments", enrollments[2:11])
    tied = await expected_order(
        engine, "enrollments", "instance_id = CAST(:i AS uuid)", i=instance_id
    )
    assert_tie_group(tied, enrollments[2:11])
    query = f"""query($id: ID!, $first: Int, $after: String) {{ instance(id: $id) {{
      enrollments(first: $first, after: $after) {{ {CONNECTION} }} }} }}"""
    await walk(client, read_key, query, path("instance", "enrollments"), tied, {"id": instance_id})

    enrollment_id = tied[0]
    events = await expected_order(
        engine, "campaign_events", "enrollment_id = CAST(:e AS uuid)", e=enrollment_id
    )
    await tie(engine, "campaign_events", events)
    events = await expected_order(
        engine, "campaign_events", "enrollment_id = CAST(:e AS uuid)", e=enrollment_id
    )
    assert_tie_group(events, events)
    query = f"""query($id: ID!, $first: Int, $after: String) {{ enrollment(id: $id) {{
      events(first: $first, after: $after) {{ {CONNECTION} }} }} }}"""
    await walk(client, read_key, query, path("enrollment", "events"), events, {"id": enrollment_id})

    # Every instance at one created_at: the root list is ordered by id alone.
    instances = await expected_order(engine, "campaign_instances")
    await tie(engine, "campaign_instances", instances)
    instances = await expected_order(engine, "campaign_instances")
    assert_tie_group(instances, instances)
    query = f"""query($first: Int, $after: String) {{
      instances(first: $first, after: $after) {{ {CONNECTION} }} }}"""
    await walk(client, read_key, query, path("instances"), instances, check_edge_cursors=False)
