"""createTemplate: the happy path read back through the query API, and every rule of domain.md
(Templates, JSON limits) on both sides of its boundary."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.graphql_client import gql
from tests.mutations.helpers import (
    CREATE_TEMPLATE,
    assert_refused,
    count_rows,
    error_fields,
    json_size,
    mutate,
    nested,
    random_id,
    read_template,
    sized_object,
)

WRITER = "test-writer"

TEMPLATES = """
query Templates($filter: TemplateFilter) {
  templates(first: 100, filter: $filter) { totalCount nodes { id name } }
}
"""


async def _create(client: httpx.AsyncClient, key: str, data: dict[str, Any]) -> dict[str, Any]:
    return await mutate(client, key, CREATE_TEMPLATE, "createTemplate", {"input": data})


async def _accepted(
    app: Starlette, client: httpx.AsyncClient, key: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Create, check it was stored, and return the template as the query API reads it back."""
    result = await _create(client, key, data)
    assert result["errors"] == [], result
    assert result["template"] is not None
    stored = await read_template(client, key, result["template"]["id"])
    where = "id = CAST(:id AS uuid)"
    assert await count_rows(app, "campaign_templates", where, id=stored["id"]) == 1
    return stored


async def _refused(
    app: Starlette, client: httpx.AsyncClient, key: str, data: dict[str, Any], field: str
) -> None:
    result = await _create(client, key, data)
    assert_refused(result, "template", "INVALID", ["input", field])
    assert await count_rows(app, "campaign_templates") == 0


def _valid(**overrides: Any) -> dict[str, Any]:
    return {"name": "Q3 outbound", "type": "EMAIL"} | overrides


async def test_create_template_stores_every_field_and_reads_back(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    icp = random_id()
    settings = {"timezone": "Europe/Paris", "sendWindow": {"from": 9, "to": 17}, "tags": ["a"]}
    data = {
        "name": "Q3 outbound",
        "description": "For mid-market CFOs",
        "type": "MULTI_CHANNEL",
        "pathType": "DYNAMIC_AI",
        "icpProfileId": icp,
        "settings": settings,
    }
    result = await _create(client, write_key, data)
    assert result["errors"] == []
    created = result["template"]

    stored = await read_template(client, write_key, created["id"])
    expected = {
        "id": created["id"],
        "name": "Q3 outbound",
        "description": "For mid-market CFOs",
        "type": "MULTI_CHANNEL",
        "pathType": "DYNAMIC_AI",
        "icpProfileId": icp,
        "settings": settings,
        "createdBy": WRITER,
        "isActive": True,
    }
    assert {k: stored[k] for k in expected} == expected
    assert {k: created[k] for k in expected} == expected
    assert stored["emailSteps"] == []
    assert stored["linkedinSteps"] == []
    assert stored["createdAt"]
    assert stored["updatedAt"]
    assert await count_rows(app, "campaign_templates") == 1


async def test_create_template_defaults(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    stored = await _accepted(app, client, write_key, {"name": "Plain", "type": "LINKEDIN"})
    assert stored["type"] == "LINKEDIN"
    assert stored["pathType"] == "STRUCTURED"
    assert stored["settings"] == {}
    assert stored["description"] is None
    assert stored["icpProfileId"] is None
    assert stored["createdBy"] == WRITER
    assert stored["isActive"] is True


async def test_create_template_null_optionals(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    data = _valid(description=None, icpProfileId=None, settings=None)
    stored = await _accepted(app, client, write_key, data)
    assert stored["description"] is None
    assert stored["icpProfileId"] is None
    assert stored["settings"] == {}


async def test_create_template_is_listed(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    stored = await _accepted(app, client, write_key, _valid(name="Listed one"))
    body = await gql(client, write_key, TEMPLATES, {})
    assert body["data"]["templates"]["nodes"] == [{"id": stored["id"], "name": "Listed one"}]


# --- name -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stored_as"),
    [
        ("x", "x"),
        ("  x  ", "x"),
        ("\t Welcome series \n", "Welcome series"),
        ("n" * 255, "n" * 255),
        ("   " + "n" * 255 + "   ", "n" * 255),
        ("é" * 255, "é" * 255),
    ],
    ids=["one", "trimmed", "trimmed-tabs", "255", "255-after-trim", "255-non-ascii"],
)
async def test_name_accepted_and_trimmed(
    app: Starlette, client: httpx.AsyncClient, write_key: str, name: str, stored_as: str
) -> None:
    stored = await _accepted(app, client, write_key, _valid(name=name))
    assert stored["name"] == stored_as


@pytest.mark.parametrize(
    "name",
    ["n" * 256, " " + "n" * 256 + " ", "é" * 256, "", "   ", "\t\n", "a\x00b"],
    ids=["256", "256-after-trim", "256-non-ascii", "empty", "spaces", "whitespace", "nul"],
)
async def test_name_refused(
    app: Starlette, client: httpx.AsyncClient, write_key: str, name: str
) -> None:
    await _refused(app, client, write_key, _valid(name=name), "name")


# --- description ------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 4999, 5000])
async def test_description_up_to_5000_accepted(
    app: Starlette, client: httpx.AsyncClient, write_key: str, length: int
) -> None:
    stored = await _accepted(app, client, write_key, _valid(description="d" * length))
    # An empty optional text is stored as "no description".
    assert stored["description"] == ("d" * length or None)


@pytest.mark.parametrize("length", [5001, 20000])
async def test_description_over_5000_refused(
    app: Starlette, client: httpx.AsyncClient, write_key: str, length: int
) -> None:
    await _refused(app, client, write_key, _valid(description="d" * length), "description")


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [[], [1, 2], "text", "{}", 42, 1.5, True],
    ids=["empty-array", "array", "string", "json-in-string", "int", "float", "bool"],
)
async def test_settings_must_be_an_object(
    app: Starlette, client: httpx.AsyncClient, write_key: str, value: Any
) -> None:
    await _refused(app, client, write_key, _valid(settings=value), "settings")


@pytest.mark.parametrize("filler", ["x", "é", "€"], ids=["ascii", "2-byte", "3-byte"])
async def test_settings_exactly_10240_bytes_accepted(
    app: Starlette, client: httpx.AsyncClient, write_key: str, filler: str
) -> None:
    settings = sized_object(10240, filler)
    stored = await _accepted(app, client, write_key, _valid(settings=settings))
    assert stored["settings"] == settings


@pytest.mark.parametrize("filler", ["x", "é", "€"], ids=["ascii", "2-byte", "3-byte"])
async def test_settings_10241_bytes_refused(
    app: Starlette, client: httpx.AsyncClient, write_key: str, filler: str
) -> None:
    settings = sized_object(10241, filler)
    await _refused(app, client, write_key, _valid(settings=settings), "settings")


async def test_settings_size_counts_bytes_not_characters(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """6,000 two-byte characters: under 10,240 characters, over 10,240 bytes."""
    settings = {"k": "é" * 6000}
    assert len(json.dumps(settings, ensure_ascii=False)) < 10240 < json_size(settings)
    await _refused(app, client, write_key, _valid(settings=settings), "settings")


async def test_settings_size_refusal_names_the_field_whatever_the_numbers(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """An object far under the limit by the documented measure (about 330 bytes) must not be
    refused anonymously: if the service refuses it at all (its database measures numbers in
    jsonb's expanded form), the error must still be a user error on ["input", "settings"]."""
    settings = {"n": [1e300] * 40}
    assert json_size(settings) < 1000
    result = await _create(client, write_key, _valid(settings=settings))
    if result["errors"]:
        assert_refused(result, "template", "INVALID", ["input", "settings"])
        assert await count_rows(app, "campaign_templates") == 0
    else:
        stored = await read_template(client, write_key, result["template"]["id"])
        assert stored["settings"] == settings


@pytest.mark.parametrize("depth", [1, 2, 5])
async def test_settings_depth_up_to_5_accepted(
    app: Starlette, client: httpx.AsyncClient, write_key: str, depth: int
) -> None:
    settings = nested(depth)
    stored = await _accepted(app, client, write_key, _valid(settings=settings))
    assert stored["settings"] == settings


async def test_settings_depth_5_with_arrays_accepted(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    settings = {"a": [{"b": [[1, 2]]}]}  # object > array > object > array > array
    stored = await _accepted(app, client, write_key, _valid(settings=settings))
    assert stored["settings"] == settings


@pytest.mark.parametrize(
    "value",
    [
        nested(6),
        nested(40),
        {"a": [{"b": [[[]]]}]},
        {"ok": 1, "deep": {"a": {"b": {"c": {"d": {}}}}}},
    ],
    ids=["objects-6", "objects-40", "arrays-6", "empty-object-at-6"],
)
async def test_settings_depth_6_refused(
    app: Starlette, client: httpx.AsyncClient, write_key: str, value: dict[str, Any]
) -> None:
    await _refused(app, client, write_key, _valid(settings=value), "settings")


# --- icpProfileId -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "icp", ["nope", "", "1234", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", random_id() + "0"]
)
async def test_malformed_icp_profile_id_refused(
    app: Starlette, client: httpx.AsyncClient, write_key: str, icp: str
) -> None:
    await _refused(app, client, write_key, _valid(icpProfileId=icp), "icpProfileId")


async def test_icp_profile_id_stored(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    icp = random_id()
    stored = await _accepted(app, client, write_key, _valid(icpProfileId=icp))
    assert stored["icpProfileId"] == icp


# --- several problems at once -----------------------------------------------------------------


async def test_all_errors_of_one_input_reported_together(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    data = _valid(name="   ", settings=[1], icpProfileId="nope")
    result = await _create(client, write_key, data)
    assert result["template"] is None
    assert len(result["errors"]) == 3, result["errors"]
    assert {e["code"] for e in result["errors"]} == {"INVALID"}
    assert error_fields(result) == [
        ("input", "icpProfileId"),
        ("input", "name"),
        ("input", "settings"),
    ]
    assert await count_rows(app, "campaign_templates") == 0


async def test_four_errors_reported_together(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    data = _valid(name="n" * 256, description="d" * 5001, settings=nested(6), icpProfileId="x")
    result = await _create(client, write_key, data)
    assert result["template"] is None
    assert error_fields(result) == [
        ("input", "description"),
        ("input", "icpProfileId"),
        ("input", "name"),
        ("input", "settings"),
    ]
    assert await count_rows(app, "campaign_templates") == 0


# --- things GraphQL itself refuses ------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"type": "EMAIL"},
        {"name": "x"},
        {"name": "x", "type": "FAX"},
        {"name": None, "type": "EMAIL"},
    ],
    ids=["no-name", "no-type", "bad-type", "null-name"],
)
async def test_graphql_validation_errors_write_nothing(
    app: Starlette, client: httpx.AsyncClient, write_key: str, data: dict[str, Any]
) -> None:
    body = await gql(client, write_key, CREATE_TEMPLATE, {"input": data})
    assert body.get("data") is None
    assert body["errors"], body
    assert all("path" not in e for e in body["errors"]), body
    assert await count_rows(app, "campaign_templates") == 0
