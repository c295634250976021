"""updateTemplate: partial updates (absent = unchanged, null = cleared or refused), every rule on
both sides of its boundary, and unknown or malformed ids."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.mutations.helpers import (
    TEMPLATE_FIELDS,
    assert_refused,
    create_template,
    error_fields,
    mutate,
    nested,
    random_id,
    read_template,
    sized_object,
)

UPDATE_TEMPLATE = f"""
mutation UpdateTemplate($id: ID!, $input: UpdateTemplateInput!) {{
  updateTemplate(id: $id, input: $input) {{
    template {{ {TEMPLATE_FIELDS} }}
    errors {{ field code message }}
  }}
}}
"""

ORIGINAL = {
    "name": "Original name",
    "description": "Original description",
    "type": "MULTI_CHANNEL",
    "pathType": "DYNAMIC_AI",
    "icpProfileId": "6f1c2b8e-8d5e-4d3a-9f57-0c6f1f7a4b21",
    "settings": {"timezone": "UTC", "limits": {"daily": 50}},
}
EDITABLE = ("name", "description", "pathType", "icpProfileId", "settings")


async def _update(
    client: httpx.AsyncClient, key: str, template_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    variables = {"id": template_id, "input": data}
    return await mutate(client, key, UPDATE_TEMPLATE, "updateTemplate", variables)


@pytest.fixture
async def original(client: httpx.AsyncClient, write_key: str) -> dict[str, Any]:
    created = await create_template(client, write_key, **ORIGINAL)
    return await read_template(client, write_key, created["id"])


async def _assert_unchanged(client: httpx.AsyncClient, key: str, original: dict[str, Any]) -> None:
    assert await read_template(client, key, original["id"]) == original


async def test_update_every_field_reads_back(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any]
) -> None:
    icp = random_id()
    data = {
        "name": "  New name  ",
        "description": "New description",
        "pathType": "STRUCTURED",
        "icpProfileId": icp,
        "settings": {"timezone": "Asia/Tokyo"},
    }
    result = await _update(client, write_key, original["id"], data)
    assert result["errors"] == []
    assert result["template"]["id"] == original["id"]
    stored = await read_template(client, write_key, original["id"])
    assert stored["name"] == "New name"
    assert stored["description"] == "New description"
    assert stored["pathType"] == "STRUCTURED"
    assert stored["icpProfileId"] == icp
    assert stored["settings"] == {"timezone": "Asia/Tokyo"}  # replaced, not merged
    # Not editable through the update: kept.
    assert stored["type"] == original["type"]
    assert stored["createdBy"] == "test-writer"
    assert stored["createdAt"] == original["createdAt"]
    assert stored["isActive"] is True
    assert stored["updatedAt"] >= original["updatedAt"]
    assert {k: result["template"][k] for k in EDITABLE} == {k: stored[k] for k in EDITABLE}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Only the name"),
        ("description", "Only the description"),
        ("pathType", "STRUCTURED"),
        ("icpProfileId", "0b8a3c55-97c9-4c4e-8d6a-3f0e5b2b1c11"),
        ("settings", {"only": "settings"}),
    ],
)
async def test_fields_left_out_are_unchanged(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any], field: str, value: Any
) -> None:
    result = await _update(client, write_key, original["id"], {field: value})
    assert result["errors"] == []
    stored = await read_template(client, write_key, original["id"])
    assert stored[field] == value
    for other in EDITABLE:
        if other != field:
            assert stored[other] == original[other], other


async def test_empty_update_changes_nothing(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any]
) -> None:
    result = await _update(client, write_key, original["id"], {})
    assert result["errors"] == []
    stored = await read_template(client, write_key, original["id"])
    assert {k: stored[k] for k in (*EDITABLE, "type", "isActive", "createdBy")} == {
        k: original[k] for k in (*EDITABLE, "type", "isActive", "createdBy")
    }


@pytest.mark.parametrize("field", ["description", "icpProfileId"])
async def test_null_clears_optional_fields(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any], field: str
) -> None:
    result = await _update(client, write_key, original["id"], {field: None})
    assert result["errors"] == []
    stored = await read_template(client, write_key, original["id"])
    assert stored[field] is None
    for other in EDITABLE:
        if other != field:
            assert stored[other] == original[other], other


@pytest.mark.parametrize("field", ["name", "pathType", "settings"])
async def test_null_on_required_field_refused(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any], field: str
) -> None:
    result = await _update(client, write_key, original["id"], {field: None})
    assert_refused(result, "template", "INVALID", ["input", field])
    await _assert_unchanged(client, write_key, original)


async def test_nulls_on_all_required_fields_give_one_error_each(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any]
) -> None:
    data = {"name": None, "pathType": None, "settings": None, "description": "valid"}
    result = await _update(client, write_key, original["id"], data)
    assert result["template"] is None
    assert error_fields(result) == [("input", "name"), ("input", "pathType"), ("input", "settings")]
    assert {e["code"] for e in result["errors"]} == {"INVALID"}
    await _assert_unchanged(client, write_key, original)


@pytest.mark.parametrize(
    ("field", "value", "stored_as"),
    [
        ("name", "n" * 255, "n" * 255),
        ("name", "  trimmed  ", "trimmed"),
        ("name", "  " + "n" * 255 + "  ", "n" * 255),
        ("description", "d" * 5000, "d" * 5000),
        ("settings", nested(5), nested(5)),
        ("settings", sized_object(10240), sized_object(10240)),
        ("settings", sized_object(10240, "é"), sized_object(10240, "é")),
        ("settings", {}, {}),
    ],
    ids=[
        "name-255",
        "name-trimmed",
        "name-255-after-trim",
        "description-5000",
        "settings-depth-5",
        "settings-10240",
        "settings-10240-non-ascii",
        "settings-empty",
    ],
)
async def test_boundary_values_accepted(
    client: httpx.AsyncClient,
    write_key: str,
    original: dict[str, Any],
    field: str,
    value: Any,
    stored_as: Any,
) -> None:
    result = await _update(client, write_key, original["id"], {field: value})
    assert result["errors"] == []
    stored = await read_template(client, write_key, original["id"])
    assert stored[field] == stored_as


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "n" * 256),
        ("name", ""),
        ("name", "    "),
        ("description", "d" * 5001),
        ("settings", nested(6)),
        ("settings", sized_object(10241)),
        ("settings", sized_object(10241, "é")),
        ("settings", [{"a": 1}]),
        ("settings", "a string"),
        ("icpProfileId", "nope"),
    ],
    ids=[
        "name-256",
        "name-empty",
        "name-blank",
        "description-5001",
        "settings-depth-6",
        "settings-10241",
        "settings-10241-non-ascii",
        "settings-array",
        "settings-string",
        "icp-malformed",
    ],
)
async def test_rule_breaking_values_refused(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any], field: str, value: Any
) -> None:
    result = await _update(client, write_key, original["id"], {field: value})
    assert_refused(result, "template", "INVALID", ["input", field])
    await _assert_unchanged(client, write_key, original)


async def test_one_bad_field_blocks_the_good_ones(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any]
) -> None:
    data = {"name": "Would be fine", "description": "d" * 5001}
    result = await _update(client, write_key, original["id"], data)
    assert_refused(result, "template", "INVALID", ["input", "description"])
    await _assert_unchanged(client, write_key, original)


async def test_all_errors_reported_together(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any]
) -> None:
    data = {"name": " ", "settings": [], "icpProfileId": "nope", "description": "d" * 5001}
    result = await _update(client, write_key, original["id"], data)
    assert result["template"] is None
    assert error_fields(result) == [
        ("input", "description"),
        ("input", "icpProfileId"),
        ("input", "name"),
        ("input", "settings"),
    ]
    await _assert_unchanged(client, write_key, original)


async def test_unknown_id_is_not_found(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any]
) -> None:
    result = await _update(client, write_key, random_id(), {"name": "x"})
    assert_refused(result, "template", "NOT_FOUND", ["id"])
    await _assert_unchanged(client, write_key, original)


@pytest.mark.parametrize("bad_id", ["nope", "", "123", "' OR 1=1 --"])
async def test_malformed_id_is_invalid(
    client: httpx.AsyncClient, write_key: str, original: dict[str, Any], bad_id: str
) -> None:
    result = await _update(client, write_key, bad_id, {"name": "x"})
    assert_refused(result, "template", "INVALID", ["id"])
    await _assert_unchanged(client, write_key, original)


async def test_update_only_touches_its_template(
    app: Starlette, client: httpx.AsyncClient, write_key: str, original: dict[str, Any]
) -> None:
    other = await create_template(client, write_key, name="Other")
    other_before = await read_template(client, write_key, other["id"])
    result = await _update(client, write_key, original["id"], {"name": "Renamed"})
    assert result["errors"] == []
    assert await read_template(client, write_key, other["id"]) == other_before
