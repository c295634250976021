"""Template and step fields, filters and ids, read against the demo data."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import httpx
from starlette.applications import Starlette

from app.cli.seed import _email_steps, _instances, _linkedin_steps, _templates, seed_id
from tests.graphql.seed_reading import (
    DEFS_NOW,
    EMAIL_STEP_FIELDS,
    INSTANCE_FIELDS,
    INSTANCE_SQL,
    LINKEDIN_STEP_FIELDS,
    PAGE_INFO,
    TEMPLATE_FIELDS,
    TEMPLATE_SQL,
    fetch,
    graphql_error,
    ids,
    instance_expected,
    newest_first,
    ok,
    parse_time,
    run,
    same,
    sid,
    template_expected,
)

# --------------------------------------------------------------------------- templates


async def test_templates_and_steps_match_the_seed(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""
    {{ templates(filter: {{isActive: null}}) {{ totalCount nodes {{ {TEMPLATE_FIELDS}
        emailSteps {{ {EMAIL_STEP_FIELDS} }} linkedinSteps {{ {LINKEDIN_STEP_FIELDS} }} }} }} }}
    """
    result = (await ok(client, read_key, query))["templates"]
    definitions = {str(t["id"]): t for t in _templates()}
    assert result["totalCount"] == len(definitions)
    assert ids(result["nodes"]) == await newest_first(seeded, "campaign_templates")
    rows = {r["id"]: r for r in await fetch(seeded, TEMPLATE_SQL)}
    email_rows = {
        r["key"]: r
        for r in await fetch(
            seeded, "SELECT id::text AS key, created_at, updated_at FROM email_steps"
        )
    }
    linkedin_rows = {
        r["key"]: r
        for r in await fetch(
            seeded, "SELECT id::text AS key, created_at, updated_at FROM linkedin_steps"
        )
    }
    for node in result["nodes"]:
        d = definitions[node["id"]]
        same(node, template_expected(rows[node["id"]]))
        same(
            node,
            {
                "name": d["name"],
                "description": d["description"],
                "type": d["type"].name,
                "pathType": d["path_type"].name,
                "settings": d["settings"],
                "isActive": d.get("is_active", True),
                "icpProfileId": None,
                "createdBy": None,
            },
        )
        want_email = sorted(
            (s for s in _email_steps() if s["template_id"] == d["id"]),
            key=lambda s: s["step_number"],
        )
        assert [s["id"] for s in node["emailSteps"]] == [str(s["id"]) for s in want_email]
        for got, s in zip(node["emailSteps"], want_email, strict=True):
            row = email_rows[str(s["id"])]
            same(
                got,
                {
                    "stepNumber": s["step_number"],
                    "subject": s["subject"],
                    "body": s["body"],
                    "delayHours": s["delay_hours"],
                    "abVariant": s["ab_variant"],
                    "isActive": True,
                    "createdAt": row["created_at"],
                    "updatedAt": row["updated_at"],
                },
            )
        want_linkedin = sorted(
            (s for s in _linkedin_steps() if s["template_id"] == d["id"]),
            key=lambda s: s["step_number"],
        )
        assert [s["id"] for s in node["linkedinSteps"]] == [str(s["id"]) for s in want_linkedin]
        for got, s in zip(node["linkedinSteps"], want_linkedin, strict=True):
            row = linkedin_rows[str(s["id"])]
            same(
                got,
                {
                    "stepNumber": s["step_number"],
                    "action": s["action"].name,
                    "message": s["message"],
                    "delayHours": s["delay_hours"],
                    "isActive": True,
                    "createdAt": row["created_at"],
                    "updatedAt": row["updated_at"],
                },
            )
    # The seed really exercises both step kinds, nullable fields and an archived template.
    assert any(n["emailSteps"] and n["linkedinSteps"] for n in result["nodes"])
    assert any(s["subject"] is None for n in result["nodes"] for s in n["emailSteps"])
    assert any(not n["isActive"] for n in result["nodes"])


ACTIVE = ["tech", "founders", "linkedin"]


TEMPLATE_FILTER_CASES: list[tuple[dict[str, Any] | None, list[str]]] = [
    (None, ACTIVE),
    ({}, ACTIVE),
    ({"isActive": True}, ACTIVE),
    ({"isActive": False}, ["ai"]),
    ({"isActive": None}, [*ACTIVE, "ai"]),
    ({"type": "EMAIL"}, ["tech"]),
    ({"type": "EMAIL", "isActive": None}, ["tech", "ai"]),
    ({"type": "EMAIL", "isActive": False}, ["ai"]),
    ({"type": "LINKEDIN"}, ["linkedin"]),
    ({"type": "MULTI_CHANNEL"}, ["founders"]),
    ({"pathType": "STRUCTURED"}, ACTIVE),
    ({"pathType": "DYNAMIC_AI"}, []),
    ({"pathType": "DYNAMIC_AI", "isActive": None}, ["ai"]),
    ({"type": "LINKEDIN", "pathType": "DYNAMIC_AI", "isActive": None}, []),
    ({"search": "outreach"}, ["tech"]),
    ({"search": "OUTREACH"}, ["tech"]),
    ({"search": "oUtReAcH"}, ["tech"]),
    ({"search": "Tech Company Outreach"}, ["tech"]),
    ({"search": "warm"}, ["linkedin"]),
    ({"search": "nurture"}, []),
    ({"search": "NURTURE", "isActive": None}, ["ai"]),
    ({"search": "o", "type": "MULTI_CHANNEL"}, ["founders"]),
    ({"search": "no such template"}, []),
]


async def test_template_filter(seeded: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    query = """query($filter: TemplateFilter) {
      templates(filter: $filter) { totalCount nodes { id name } edges { node { id } } } }"""
    order = await newest_first(seeded, "campaign_templates")
    for template_filter, expected in TEMPLATE_FILTER_CASES:
        variables = {} if template_filter is None else {"filter": template_filter}
        result = (await ok(client, read_key, query, variables))["templates"]
        want = [i for i in order if i in {sid(f"template:{k}") for k in expected}]
        assert len(want) == len(expected)
        assert ids(result["nodes"]) == want, template_filter
        assert [e["node"]["id"] for e in result["edges"]] == want, template_filter
        assert result["totalCount"] == len(want), template_filter


async def test_search_treats_like_wildcards_and_backslash_literally(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    names = [
        "100% Growth",
        "1000 Growth",
        "snake_case plan",
        "snakeXcase plan",
        "back\\slash",
        "backslash",
        "Quote 'single'",
    ]
    for name in names:
        await run(
            seeded,
            "INSERT INTO campaign_templates (name, type) VALUES (:name, 'email')",
            name=name,
        )
    query = """query($s: String) {
      templates(first: 100, filter: {search: $s}) { totalCount nodes { name } } }"""
    cases = {
        "100%": ["100% Growth"],
        "%": ["100% Growth"],
        "0% g": ["100% Growth"],
        "e_c": ["snake_case plan"],
        "_": ["snake_case plan"],
        "SNAKE_": ["snake_case plan"],
        "\\": ["back\\slash"],
        "k\\s": ["back\\slash"],
        "%%": [],
        "__": [],
        "'single'": ["Quote 'single'"],
    }
    for term, want in cases.items():
        result = (await ok(client, read_key, query, {"s": term}))["templates"]
        assert sorted(n["name"] for n in result["nodes"]) == sorted(want), term
        assert result["totalCount"] == len(want), term
    # An empty search filters nothing.
    total = len(await fetch(seeded, "SELECT id FROM campaign_templates WHERE is_active"))
    result = (await ok(client, read_key, query, {"s": ""}))["templates"]
    assert result["totalCount"] == total == len(result["nodes"])


async def test_template_by_id(seeded: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    icp = str(uuid.uuid4())
    await run(
        seeded,
        "UPDATE campaign_templates SET icp_profile_id = CAST(:icp AS uuid), created_by = :by"
        " WHERE id = CAST(:id AS uuid)",
        icp=icp,
        by="ops@example.com",
        id=sid("template:tech"),
    )
    query = f"query($id: ID!) {{ template(id: $id) {{ {TEMPLATE_FIELDS} }} }}"
    rows = {r["id"]: r for r in await fetch(seeded, TEMPLATE_SQL)}

    tech = (await ok(client, read_key, query, {"id": sid("template:tech")}))["template"]
    same(tech, template_expected(rows[sid("template:tech")]))
    assert tech["icpProfileId"] == icp
    assert tech["createdBy"] == "ops@example.com"
    assert tech["name"] == "Tech Company Outreach"

    # An id in another spelling (upper case) names the same template.
    upper = await ok(client, read_key, query, {"id": sid("template:tech").upper()})
    assert upper["template"]["id"] == sid("template:tech")

    # Archived templates are still readable by id.
    archived = (await ok(client, read_key, query, {"id": sid("template:ai")}))["template"]
    same(archived, template_expected(rows[sid("template:ai")]))
    assert archived["isActive"] is False

    for unknown in (sid("template:nope"), str(uuid.uuid4()), sid("instance:tech-q4")):
        assert (await ok(client, read_key, query, {"id": unknown})) == {"template": None}


async def test_malformed_id_is_a_readable_graphql_error(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    queries = [
        "query($id: ID!) { template(id: $id) { id } }",
        "query($id: ID!) { instance(id: $id) { id } }",
        "query($id: ID!) { enrollment(id: $id) { id } }",
        "query($id: ID!) { instances(filter: {templateId: $id}) { totalCount } }",
    ]
    for query in queries:
        for bad_id in ("garbage", "", "1234", "6f1c3a52-4d0e-4b8e-9a57-2f9c1d7e8b1"):
            error = await graphql_error(client, read_key, query, {"id": bad_id})
            assert "id" in error["message"].lower(), (query, bad_id, error)


async def test_inactive_steps_are_listed_only_on_request(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    inactive_email = sid(f"email:{seed_id('template:tech')}:2")
    inactive_linkedin = sid(f"linkedin:{seed_id('template:founders')}:3")
    await run(
        seeded,
        "UPDATE email_steps SET is_active = false WHERE id = CAST(:id AS uuid)",
        id=inactive_email,
    )
    await run(
        seeded,
        "UPDATE linkedin_steps SET is_active = false WHERE id = CAST(:id AS uuid)",
        id=inactive_linkedin,
    )
    query = """query($t: ID!, $f: ID!) {
      tech: template(id: $t) {
        emailSteps { id stepNumber isActive }
        off: emailSteps(includeInactive: false) { id stepNumber isActive }
        all: emailSteps(includeInactive: true) { id stepNumber isActive updatedAt }
      }
      founders: template(id: $f) {
        linkedinSteps { id stepNumber isActive }
        off: linkedinSteps(includeInactive: false) { id stepNumber isActive }
        all: linkedinSteps(includeInactive: true) { id stepNumber isActive action updatedAt }
        emailSteps(includeInactive: true) { id isActive }
      }
    }"""
    data = await ok(
        client, read_key, query, {"t": sid("template:tech"), "f": sid("template:founders")}
    )
    tech_id, founders_id = seed_id("template:tech"), seed_id("template:founders")
    tech, founders = data["tech"], data["founders"]

    active_email = [sid(f"email:{tech_id}:{n}") for n in (1, 3)]
    assert ids(tech["emailSteps"]) == active_email
    assert ids(tech["off"]) == active_email
    assert all(s["isActive"] for s in tech["emailSteps"])
    assert ids(tech["all"]) == [sid(f"email:{tech_id}:{n}") for n in (1, 2, 3)]
    assert [s["stepNumber"] for s in tech["all"]] == [1, 2, 3]
    assert [s["isActive"] for s in tech["all"]] == [True, False, True]
    row = (
        await fetch(
            seeded,
            "SELECT updated_at FROM email_steps WHERE id = CAST(:id AS uuid)",
            id=inactive_email,
        )
    )[0]
    assert parse_time(tech["all"][1]["updatedAt"]) == row["updated_at"]

    active_linkedin = [sid(f"linkedin:{founders_id}:{n}") for n in (1, 2)]
    assert ids(founders["linkedinSteps"]) == active_linkedin
    assert ids(founders["off"]) == active_linkedin
    assert [(s["stepNumber"], s["isActive"], s["action"]) for s in founders["all"]] == [
        (1, True, "PROFILE_VISIT"),
        (2, True, "CONNECTION_REQUEST"),
        (3, False, "MESSAGE"),
    ]
    # Deactivating a LinkedIn step leaves the email steps alone.
    assert founders["emailSteps"] == [{"id": sid(f"email:{founders_id}:1"), "isActive": True}]


async def test_template_instances_with_status(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    query = f"""query($id: ID!, $status: InstanceStatus) {{ template(id: $id) {{
      instances(status: $status) {{ totalCount nodes {{ {INSTANCE_FIELDS} }} {PAGE_INFO} }} }} }}"""
    rows = {r["id"]: r for r in await fetch(seeded, INSTANCE_SQL)}
    by_template: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in _instances(DEFS_NOW):
        by_template[str(d["template_id"])].append(d)
    for key in ("tech", "founders", "linkedin", "ai"):
        template_id = sid(f"template:{key}")
        defs = by_template.get(template_id, [])
        result = (await ok(client, read_key, query, {"id": template_id}))["template"]["instances"]
        assert sorted(ids(result["nodes"])) == sorted(str(d["id"]) for d in defs)
        assert result["totalCount"] == len(defs)
        for node in result["nodes"]:
            same(node, instance_expected(rows[node["id"]]))
        assert result["pageInfo"]["hasNextPage"] is False
        assert result["pageInfo"]["hasPreviousPage"] is False
        for d in defs:
            for status in ("DRAFT", "ACTIVE", "PAUSED", "COMPLETED", "FAILED"):
                variables = {"id": template_id, "status": status}
                filtered = (await ok(client, read_key, query, variables))["template"]["instances"]
                want = [str(d["id"])] if d["status"].name == status else []
                assert ids(filtered["nodes"]) == want, (key, status)
                assert filtered["totalCount"] == len(want)
