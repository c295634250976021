"""What one request may ask for, whatever its shape: the contacts of all its bulkEnroll fields
together, the nodes its payload lists lead to, and one operation, named when there are several.

Each refusal comes before execution: the request writes nothing and runs no SQL but the
API-key lookup.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from app.domain.limits import BULK_ENROLL_MAX
from app.observability.sql_observer import recording
from tests.lifecycle.helpers import (
    BULK_ENROLL_COUNTS,
    bulk_enroll,
    create_template,
    engine_of,
    enrollment_rows,
    instance_in,
)


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


def _aliased_bulk_enroll(aliases: int, variables: list[str]) -> str:
    """``aliases`` bulkEnroll fields, the n-th taking the contacts of variables[n % len]."""
    declared = " ".join(f"${v}: [EnrollContactInput!]!" for v in variables)
    fields = " ".join(
        f"a{n}: bulkEnroll(instanceId: $id, contacts: ${variables[n % len(variables)]})"
        " { enrolledCount }"
        for n in range(aliases)
    )
    return f"mutation($id: ID! {declared}) {{ {fields} }}"


async def test_ten_aliases_sharing_the_largest_list_are_refused_and_write_nothing(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """The issue's request: ten bulkEnroll aliases over one 10,000-contact variable."""
    instance_id = await _instance(app, client, write_key)
    variables = {"id": instance_id, "shared": _contacts(BULK_ENROLL_MAX)}
    document = _aliased_bulk_enroll(10, ["shared"])
    payload = {"query": document, "variables": variables}
    body, statements = await post(app, client, write_key, payload)
    assert statements == []
    assert body["data"] is None
    [error] = body["errors"]
    total = 10 * BULK_ENROLL_MAX
    assert error["message"].startswith(f"contacts {total} exceed {BULK_ENROLL_MAX}")
    assert error["extensions"] == {
        "code": "LIMIT_EXCEEDED",
        "limit": "contacts",
        "maximum": BULK_ENROLL_MAX,
        "value": total,
    }
    assert await enrollment_rows(engine_of(app), instance_id) == []


async def test_the_contacts_of_a_request_add_up_to_the_limit_and_no_further(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    instance_id = await _instance(app, client, write_key)
    document = _aliased_bulk_enroll(2, ["many", "few"])
    many = _contacts(BULK_ENROLL_MAX - 2, prefix="m")
    over = {"id": instance_id, "many": many, "few": _contacts(3, prefix="f")}
    body, statements = await post(app, client, write_key, {"query": document, "variables": over})
    assert statements == []
    assert body["errors"][0]["extensions"]["value"] == BULK_ENROLL_MAX + 1
    assert await enrollment_rows(engine_of(app), instance_id) == []

    at_limit = over | {"few": _contacts(2, prefix="f")}
    body, _ = await post(app, client, write_key, {"query": document, "variables": at_limit})
    assert body == {"data": {"a0": {"enrolledCount": len(many)}, "a1": {"enrolledCount": 2}}}


async def test_one_field_over_the_limit_keeps_its_payload_error(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """The per-request count leaves a single bulkEnroll to name its own argument."""
    instance_id = await _instance(app, client, write_key)
    result = await bulk_enroll(
        client, write_key, instance_id, _contacts(BULK_ENROLL_MAX + 1), BULK_ENROLL_COUNTS
    )
    [error] = result["errors"]
    assert (error["code"], error["field"]) == ("LIMIT_EXCEEDED", ["contacts"])


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


TWO_OPERATIONS = """
mutation First($id: ID!) { a: bulkEnroll(instanceId: $id, contacts: [{contactId: "x",
  metadata: {email: "x@example.com", first_name: "X"}}]) { enrolledCount } }
mutation Second($id: ID!) { b: bulkEnroll(instanceId: $id, contacts: [{contactId: "y",
  metadata: {email: "y@example.com", first_name: "Y"}}]) { enrolledCount } }"""


async def test_two_operations_need_an_operation_name(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    instance_id = await _instance(app, client, write_key)
    payload = {"query": TWO_OPERATIONS, "variables": {"id": instance_id}}
    body, statements = await post(app, client, write_key, payload)
    assert statements == []
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "OPERATION_RESOLUTION_FAILURE"}
    assert "operationName" in error["message"]
    assert await enrollment_rows(engine_of(app), instance_id) == []

    named = payload | {"operationName": "Second"}
    body, _ = await post(app, client, write_key, named)
    assert body == {"data": {"b": {"enrolledCount": 1}}}
    rows = await enrollment_rows(engine_of(app), instance_id)
    assert [r["contact_id"] for r in rows] == ["y"]
