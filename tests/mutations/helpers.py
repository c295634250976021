"""Shared documents and helpers for the template and step mutation tests.

Everything a test asserts about what was stored is read back either through the query API
(``read_template``) or with SQL (``count_rows``), never from the mutation's own payload alone.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from starlette.applications import Starlette

from tests.graphql_client import gql

TEMPLATE_FIELDS = (
    "id name description type pathType icpProfileId settings createdBy isActive createdAt updatedAt"
)
EMAIL_STEP_FIELDS = "id stepNumber subject body delayHours abVariant isActive createdAt updatedAt"
LINKEDIN_STEP_FIELDS = "id stepNumber action message delayHours isActive createdAt updatedAt"
ERRORS = "errors { field code message }"

CREATE_TEMPLATE = f"""
mutation CreateTemplate($input: CreateTemplateInput!) {{
  createTemplate(input: $input) {{ template {{ {TEMPLATE_FIELDS} }} {ERRORS} }}
}}
"""

ARCHIVE_TEMPLATE = f"""
mutation ArchiveTemplate($id: ID!) {{
  archiveTemplate(id: $id) {{ template {{ {TEMPLATE_FIELDS} }} {ERRORS} }}
}}
"""

ADD_EMAIL_STEP = f"""
mutation AddEmailStep($templateId: ID!, $input: EmailStepInput!) {{
  addEmailStep(templateId: $templateId, input: $input) {{ step {{ {EMAIL_STEP_FIELDS} }} {ERRORS} }}
}}
"""

ADD_LINKEDIN_STEP = f"""
mutation AddLinkedInStep($templateId: ID!, $input: LinkedInStepInput!) {{
  addLinkedInStep(templateId: $templateId, input: $input) {{
    step {{ {LINKEDIN_STEP_FIELDS} }} {ERRORS}
  }}
}}
"""

REMOVE_EMAIL_STEP = f"""
mutation RemoveEmailStep($id: ID!) {{
  removeEmailStep(id: $id) {{ step {{ {EMAIL_STEP_FIELDS} }} {ERRORS} }}
}}
"""

REMOVE_LINKEDIN_STEP = f"""
mutation RemoveLinkedInStep($id: ID!) {{
  removeLinkedInStep(id: $id) {{ step {{ {LINKEDIN_STEP_FIELDS} }} {ERRORS} }}
}}
"""

READ_TEMPLATE = f"""
query ReadTemplate($id: ID!) {{
  template(id: $id) {{
    {TEMPLATE_FIELDS}
    emailSteps(includeInactive: true) {{ {EMAIL_STEP_FIELDS} }}
    activeEmailSteps: emailSteps {{ id stepNumber }}
    linkedinSteps(includeInactive: true) {{ {LINKEDIN_STEP_FIELDS} }}
    activeLinkedinSteps: linkedinSteps {{ id stepNumber }}
  }}
}}
"""

STEP_TABLES = {"email": "email_steps", "linkedin": "linkedin_steps"}
ALL_TABLES = ("campaign_templates", "email_steps", "linkedin_steps")


def payload(body: dict[str, Any], field: str) -> dict[str, Any]:
    """The mutation's payload; fails on any top-level GraphQL error."""
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][field]
    return result


async def mutate(
    client: httpx.AsyncClient,
    key: str,
    document: str,
    field: str,
    variables: dict[str, Any],
) -> dict[str, Any]:
    return payload(await gql(client, key, document, variables), field)


async def create_template(client: httpx.AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    """A stored template (defaults: a valid multi-channel template); fails if refused."""
    data = {"name": "Outbound", "type": "MULTI_CHANNEL"} | fields
    result = await mutate(client, key, CREATE_TEMPLATE, "createTemplate", {"input": data})
    assert result["errors"] == [], result
    template: dict[str, Any] = result["template"]
    return template


async def add_email_step(
    client: httpx.AsyncClient, key: str, template_id: str, **fields: Any
) -> dict[str, Any]:
    data = {"stepNumber": 1, "body": "Hello {{first_name}}, quick question."} | fields
    result = await mutate(
        client, key, ADD_EMAIL_STEP, "addEmailStep", {"templateId": template_id, "input": data}
    )
    assert result["errors"] == [], result
    step: dict[str, Any] = result["step"]
    return step


async def add_linkedin_step(
    client: httpx.AsyncClient, key: str, template_id: str, **fields: Any
) -> dict[str, Any]:
    data = {"stepNumber": 1, "action": "CONNECTION_REQUEST", "message": "Glad to connect"} | fields
    result = await mutate(
        client,
        key,
        ADD_LINKEDIN_STEP,
        "addLinkedInStep",
        {"templateId": template_id, "input": data},
    )
    assert result["errors"] == [], result
    step: dict[str, Any] = result["step"]
    return step


async def read_template(client: httpx.AsyncClient, key: str, template_id: str) -> dict[str, Any]:
    """The template as the query API shows it, with every step (removed ones included)."""
    body = await gql(client, key, READ_TEMPLATE, {"id": template_id})
    assert "errors" not in body, body
    template: dict[str, Any] | None = body["data"]["template"]
    assert template is not None, f"template {template_id} is not readable"
    return template


def step_by_id(template: dict[str, Any], channel: str, step_id: str) -> dict[str, Any]:
    steps = template["emailSteps" if channel == "email" else "linkedinSteps"]
    matches = [s for s in steps if s["id"] == step_id]
    assert len(matches) == 1, (step_id, steps)
    return matches[0]


async def count_rows(app: Starlette, table: str, where: str = "", **params: Any) -> int:
    """Rows in ``table`` (optionally filtered), counted with SQL on a fresh connection."""
    assert table in {*ALL_TABLES, "api_keys"}
    sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
    async with app.state.engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


async def counts(app: Starlette) -> dict[str, int]:
    """Row counts of the template and step tables, read in one statement."""
    sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t}) AS {t}" for t in ALL_TABLES)
    async with app.state.engine.connect() as connection:
        row = (await connection.execute(text(sql))).one()
    return {table: int(getattr(row, table)) for table in ALL_TABLES}


async def post_raw(
    client: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any]
) -> httpx.Response:
    """POST with Python's own JSON encoder: NaN/Infinity tokens and escaped lone surrogates
    (which httpx's encoder refuses) reach the server as a client could send them."""
    return await client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )


def assert_refused(
    result: dict[str, Any], entity: str, code: str, field: list[str]
) -> dict[str, Any]:
    """Exactly one user error with ``code`` on ``field``, and no entity."""
    assert result[entity] is None, result
    assert len(result["errors"]) == 1, result["errors"]
    error: dict[str, Any] = result["errors"][0]
    assert error["code"] == code, result["errors"]
    assert error["field"] == field, result["errors"]
    assert error["message"], result["errors"]
    return error


def error_fields(result: dict[str, Any]) -> list[tuple[str, ...]]:
    return sorted(tuple(e["field"]) for e in result["errors"])


def random_id() -> str:
    return str(uuid.uuid4())


def json_size(value: Any) -> int:
    """The size rule of domain.md: bytes of the compact-free, non-ASCII-escaping serialization."""
    return len(json.dumps(value, ensure_ascii=False).encode())


def nested(depth: int) -> dict[str, Any]:
    """A JSON object whose nesting depth (objects and arrays counted) is exactly ``depth``."""
    value: dict[str, Any] = {"leaf": 1}
    for level in range(depth - 1):
        value = {f"level{depth - 1 - level}": value}
    return value


def sized_object(size: int, filler: str = "x") -> dict[str, Any]:
    """A JSON object whose serialization (see ``json_size``) is exactly ``size`` bytes."""
    base = json_size({"k": ""})
    unit = len(filler.encode())
    count, rest = divmod(size - base, unit)
    value = {"k": filler * count + "x" * rest}
    assert json_size(value) == size
    return value
