"""What one request may ask for, whatever its shape: the nodes its payload lists lead to.

Each refusal comes before execution: the request writes nothing and runs no SQL but the
API-key lookup.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from app.observability.sql_observer import recording
from tests.lifecycle.helpers import create_template, engine_of, enrollment_rows, instance_in


async def post(
    app: Starlette, client: httpx.AsyncClient, key: str, payload: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The response body and the statements the request ran, the key lookup left out."""
    with recording(engine_of(app)) as statements:
        response = await client.post(
            "/graphql", json=payload, headers={"authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200, response.text
    return response.json(), [s for s in statements if "FROM api_keys" not in s]


async def _instance(app: Starlette, client: httpx.AsyncClient, key: str) -> str:
    template_id = await create_template(client, key, "EMAIL", email=[(1, 0)])
    return await instance_in(client, key, engine_of(app), template_id, "draft")


def _contacts(count: int, prefix: str = "c") -> list[dict[str, Any]]:
    return [
        {"contactId": f"{prefix}{n}", "metadata": {"email": f"{prefix}{n}@x.io", "first_name": "A"}}
        for n in range(count)
    ]


AMPLIFIED = """mutation($id: ID!, $contacts: [EnrollContactInput!]!) {
  bulkEnroll(instanceId: $id, contacts: $contacts) { enrollments { instance {
    enrollments(first: 100) { nodes { instance { enrollments(first: 100) { nodes { id } } } } }
  } } } }"""


async def test_payload_lists_multiply_what_is_under_them(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """The issue's 20 contacts, each enrollment's instance read 100 x 100 times: refused
    before the enrollments are written."""
    instance_id = await _instance(app, client, write_key)
    variables = {"id": instance_id, "contacts": _contacts(20)}
    payload = {"query": AMPLIFIED, "variables": variables}
    body, statements = await post(app, client, write_key, payload)
    assert statements == []
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["value"] == 20 * (100 + 100 * 100)
    assert await enrollment_rows(engine_of(app), instance_id) == []
