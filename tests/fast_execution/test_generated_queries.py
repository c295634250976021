"""A few hundred generated queries give byte-identical answers on the fast and standard paths.

The differential client (tests/differential.py) sends each query to both executors; this
test makes sure the generated set really exercised both answers and errors. Replay a failure
with FAST_PATH_SEED=<the printed seed>.
"""

from __future__ import annotations

import os

import httpx
from sqlalchemy import text
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from schema import build_schema
from tests.differential import DifferentialApp
from tests.fast_execution.query_generator import QueryGenerator
from tests.graphql_client import gql

SEED = int(os.environ.get("FAST_PATH_SEED", "20261123"))
QUERIES = 300
CURSORS = """{ templates(first: 1) { pageInfo { endCursor } }
  instances(first: 2) { pageInfo { endCursor } }
  orphanedEvents(first: 1) { pageInfo { endCursor } } }"""


async def _ids(app: Starlette) -> dict[str, list[str]]:
    tables = {"template": "campaign_templates", "instance": "campaign_instances"}
    tables |= {"enrollment": "enrollments", "event": "campaign_events"}
    ids = {}
    async with app.state.engine.connect() as connection:
        for kind, table in tables.items():
            rows = await connection.execute(
                text(f"SELECT id::text FROM {table} ORDER BY id LIMIT 4")
            )
            ids[kind] = list(rows.scalars())
    return ids


async def test_generated_queries_answer_identically_on_both_paths(
    seeded: Starlette,
    client: httpx.AsyncClient,
    read_key: str,
    differential: DifferentialApp,
) -> None:
    print(f"fast path differential: FAST_PATH_SEED={SEED}")
    async with seeded.state.sessionmaker.begin() as session:
        writer_only = await create_api_key(session, "no-read", frozenset({Scope.WRITE}))
    pages = (await gql(client, read_key, CURSORS))["data"]
    cursors = [p["pageInfo"]["endCursor"] for p in pages.values() if p["pageInfo"]["endCursor"]]
    generator = QueryGenerator(build_schema()._schema, await _ids(seeded), cursors)
    compared_before = differential.compared
    answers = errors = 0
    for offset in range(QUERIES):
        generated = generator.generate(SEED + offset)
        key = writer_only if offset % 25 == 0 else read_key
        response = await client.post(
            "/graphql",
            json={"query": generated.query, "variables": generated.variables},
            headers={"authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, (generated, response.text)
        body = response.json()
        errors += "errors" in body
        answers += body.get("data") is not None and "errors" not in body
    assert differential.compared - compared_before == QUERIES
    # The generated set must exercise both clean answers (the fast path's own output) and
    # errors (its fallback), or the comparison would prove little.
    assert answers >= QUERIES // 4, (answers, errors)
    assert errors >= QUERIES // 10, (answers, errors)
