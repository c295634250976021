"""A key without 'read' sees what its mutation wrote, and nothing the payload could lead to.

The rule is general (schema/extensions/payload_reads.py): below a mutation's payload, the
written objects' own fields need 'write' only; any field returning objects needs 'read'. The
walk over the whole schema checks it for every mutation; the HTTP tests replay the issue's two
reads and check that a refused operation writes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    get_operation_ast,
    is_leaf_type,
    parse,
)
from sqlalchemy import text
from starlette.applications import Starlette

from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from schema import build_schema
from schema.build import graphql_core_schema
from schema.extensions.payload_reads import reads_beyond_writes
from tests.graphql_client import gql


@pytest.fixture
async def write_only_key(app: Starlette) -> str:
    async with app.state.sessionmaker.begin() as session:
        return await create_api_key(session, "test-write-only", frozenset({Scope.WRITE}))


def _reads(schema: GraphQLSchema, document: str, variables: Any = None) -> list[tuple[str, ...]]:
    parsed = parse(document)
    operation = get_operation_ast(parsed)
    assert operation is not None
    return [r.path for r in reads_beyond_writes(schema, parsed, operation, variables)]


def test_every_relation_below_every_payload_needs_read() -> None:
    """For each mutation, each object in its payload: its leaf fields are free, and each of
    its fields returning objects is reported (named in the schema, not in the rule)."""
    schema = graphql_core_schema(build_schema())
    assert schema.mutation_type is not None
    relations = leaves = 0
    for name, mutation in schema.mutation_type.fields.items():
        payload = get_named_type(mutation.type)
        assert isinstance(payload, GraphQLObjectType), name
        for key, member in payload.fields.items():
            written = get_named_type(member.type)
            if is_leaf_type(written):
                assert _reads(schema, f"mutation {{ {name} {{ {key} }} }}") == []
                continue
            assert isinstance(written, GraphQLObjectType)
            for field_name, field in written.fields.items():
                document = f"mutation {{ {name} {{ {key} {{ {field_name} }} }} }}"
                if is_leaf_type(get_named_type(field.type)):
                    leaves += 1
                    assert _reads(schema, document) == [], document
                else:
                    relations += 1
                    assert _reads(schema, document) == [(name, key, field_name)], document
    assert relations > 0
    assert leaves > 0


def test_queries_fragments_aliases_and_skipped_fields() -> None:
    schema = graphql_core_schema(build_schema())
    assert _reads(schema, "{ templates { nodes { instances { nodes { id } } } } }") == []
    document = """mutation($skip: Boolean!) {
        u: updateTemplate(id: "x", input: {}) { ...Answer }
        v: updateTemplate(id: "y", input: {}) { template { id
          emailSteps @include(if: false) { id } instances @skip(if: $skip) { totalCount } } } }
      fragment Answer on TemplatePayload { template { ... on CampaignTemplate {
          id name emailSteps { id } } } errors { code } }"""
    assert _reads(schema, document, {"skip": True}) == [("u", "template", "emailSteps")]
    assert _reads(schema, document, {"skip": False}) == [
        ("u", "template", "emailSteps"),
        ("v", "template", "instances"),
    ]


async def _seeded_ids(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    """A template whose instances have enrollments, and one of those enrollments."""
    body = await gql(
        client,
        key,
        """{ instances(first: 50) { nodes { template { id }
            enrollments(first: 1) { nodes { id } } } } }""",
    )
    for instance in body["data"]["instances"]["nodes"]:
        if instance["enrollments"]["nodes"]:
            return {
                "template": instance["template"]["id"],
                "enrollment": instance["enrollments"]["nodes"][0]["id"],
            }
    raise AssertionError("the seed has an instance with enrollments")


async def _rows(app: Starlette) -> dict[str, Any]:
    async with app.state.engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM campaign_events) AS events,"
                    " (SELECT max(updated_at) FROM campaign_templates) AS templates_updated"
                )
            )
        ).one()
    return dict(row._mapping)


UPDATE_AND_READ_CONTACTS = """mutation($id: ID!) { updateTemplate(id: $id, input: {}) {
  template { id instances { nodes { enrollments { nodes { metadata
    events { nodes { metadata } } } } } } } } }"""

RECORD_AND_READ_ENROLLMENT = """mutation($input: RecordEventInput!) { recordEvent(input: $input) {
  duplicate event { id enrollment { contactId metadata instance { name } } } } }"""


def _assert_forbidden(body: dict[str, Any], path: list[str]) -> None:
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN"}
    assert error["path"] == path
    assert "'read' scope" in error["message"]


async def test_a_write_only_key_cannot_read_contacts_through_update_template(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str, write_only_key: str
) -> None:
    ids = await _seeded_ids(client, read_key)
    before = await _rows(seeded)
    body = await gql(client, write_only_key, UPDATE_AND_READ_CONTACTS, {"id": ids["template"]})
    _assert_forbidden(body, ["updateTemplate", "template", "instances"])
    assert "@" not in str(body)  # no contact's address
    assert await _rows(seeded) == before


async def test_a_write_only_key_cannot_read_the_enrollment_of_a_recorded_event(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str, write_only_key: str
) -> None:
    ids = await _seeded_ids(client, read_key)
    event = {"enrollmentId": ids["enrollment"], "eventType": "OPENED", "stepNumber": 1}
    before = await _rows(seeded)
    body = await gql(client, write_only_key, RECORD_AND_READ_ENROLLMENT, {"input": event})
    _assert_forbidden(body, ["recordEvent", "event", "enrollment"])
    assert await _rows(seeded) == before  # refused before it ran: no event stored


async def test_a_write_only_key_sees_what_it_wrote(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str, write_only_key: str
) -> None:
    ids = await _seeded_ids(client, read_key)
    body = await gql(
        client,
        write_only_key,
        """mutation($id: ID!) { updateTemplate(id: $id, input: {name: "Renamed"}) {
            template { __typename id name settings updatedAt } errors { code } } }""",
        {"id": ids["template"]},
    )
    assert "errors" not in body, body
    assert body["data"]["updateTemplate"]["template"]["name"] == "Renamed"
    event = {"enrollmentId": ids["enrollment"], "eventType": "OPENED", "stepNumber": 1}
    body = await gql(
        client,
        write_only_key,
        """mutation($input: RecordEventInput!) { recordEvent(input: $input) {
            duplicate event { id eventType } errors { code } } }""",
        {"input": event},
    )
    assert "errors" not in body, body
    assert body["data"]["recordEvent"]["event"]["eventType"] == "OPENED"


async def test_a_key_with_read_reads_through_the_payload(
    seeded: Starlette, client: httpx.AsyncClient, read_key: str, write_key: str
) -> None:
    ids = await _seeded_ids(client, read_key)
    body = await gql(client, write_key, UPDATE_AND_READ_CONTACTS, {"id": ids["template"]})
    assert "errors" not in body, body
    instances = body["data"]["updateTemplate"]["template"]["instances"]["nodes"]
    assert any(i["enrollments"]["nodes"] for i in instances)
