"""archiveTemplate: a soft delete that is safe to repeat and that closes the template to new
steps."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.graphql_client import gql
from tests.mutations.helpers import (
    ADD_EMAIL_STEP,
    ADD_LINKEDIN_STEP,
    ARCHIVE_TEMPLATE,
    add_email_step,
    add_linkedin_step,
    assert_refused,
    count_rows,
    counts,
    create_template,
    mutate,
    random_id,
    read_template,
)

TEMPLATES = """
query Templates($filter: TemplateFilter) {
  templates(first: 100, filter: $filter) { totalCount nodes { id isActive } }
}
"""


async def _archive(client: httpx.AsyncClient, key: str, template_id: str) -> dict[str, Any]:
    return await mutate(client, key, ARCHIVE_TEMPLATE, "archiveTemplate", {"id": template_id})


async def _listed(
    client: httpx.AsyncClient, key: str, filter_: dict[str, Any] | None
) -> dict[str, Any]:
    body = await gql(client, key, TEMPLATES, {"filter": filter_})
    assert "errors" not in body, body
    listed: dict[str, Any] = body["data"]["templates"]
    return listed


async def test_archive_is_a_soft_delete(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template = await create_template(client, write_key, name="To archive")
    before = await read_template(client, write_key, template["id"])

    result = await _archive(client, write_key, template["id"])
    assert result["errors"] == []
    assert result["template"]["id"] == template["id"]
    assert result["template"]["isActive"] is False

    stored = await read_template(client, write_key, template["id"])
    assert stored["isActive"] is False
    unchanged = ("name", "description", "type", "pathType", "settings", "createdBy", "createdAt")
    assert {k: stored[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert await count_rows(app, "campaign_templates") == 1
    assert (
        await count_rows(
            app, "campaign_templates", "id = CAST(:id AS uuid) AND NOT is_active", id=template["id"]
        )
        == 1
    )


async def test_archive_twice_is_not_an_error(client: httpx.AsyncClient, write_key: str) -> None:
    template = await create_template(client, write_key)
    first = await _archive(client, write_key, template["id"])
    second = await _archive(client, write_key, template["id"])
    assert first["errors"] == []
    assert second["errors"] == []
    assert second["template"]["id"] == template["id"]
    assert second["template"]["isActive"] is False
    assert (await read_template(client, write_key, template["id"]))["isActive"] is False


async def test_archived_template_listed_only_when_asked(
    client: httpx.AsyncClient, write_key: str
) -> None:
    archived = await create_template(client, write_key, name="Archived")
    active = await create_template(client, write_key, name="Active")
    assert (await _archive(client, write_key, archived["id"]))["errors"] == []

    default = await _listed(client, write_key, None)
    assert [n["id"] for n in default["nodes"]] == [active["id"]]
    assert default["totalCount"] == 1

    inactive = await _listed(client, write_key, {"isActive": False})
    assert {"id": archived["id"], "isActive": False} in inactive["nodes"]
    assert all(not n["isActive"] for n in inactive["nodes"])

    everything = await _listed(client, write_key, {"isActive": None})
    assert {n["id"] for n in everything["nodes"]} == {archived["id"], active["id"]}


async def test_archive_keeps_the_steps(client: httpx.AsyncClient, write_key: str) -> None:
    template = await create_template(client, write_key)
    email = await add_email_step(client, write_key, template["id"], stepNumber=1)
    linkedin = await add_linkedin_step(client, write_key, template["id"], stepNumber=1)
    assert (await _archive(client, write_key, template["id"]))["errors"] == []
    stored = await read_template(client, write_key, template["id"])
    assert [s["id"] for s in stored["emailSteps"]] == [email["id"]]
    assert [s["id"] for s in stored["linkedinSteps"]] == [linkedin["id"]]
    assert stored["emailSteps"][0]["isActive"] is True


@pytest.mark.parametrize(
    ("document", "field", "data"),
    [
        (ADD_EMAIL_STEP, "addEmailStep", {"stepNumber": 2, "body": "A body that is long"}),
        (
            ADD_LINKEDIN_STEP,
            "addLinkedInStep",
            {"stepNumber": 2, "action": "MESSAGE", "message": "Hello there"},
        ),
    ],
    ids=["email", "linkedin"],
)
async def test_archived_template_takes_no_new_step(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    document: str,
    field: str,
    data: dict[str, Any],
) -> None:
    template = await create_template(client, write_key)
    await add_email_step(client, write_key, template["id"], stepNumber=1)
    assert (await _archive(client, write_key, template["id"]))["errors"] == []
    before = await counts(app)

    result = await mutate(
        client, write_key, document, field, {"templateId": template["id"], "input": data}
    )
    error = assert_refused(result, "step", "TEMPLATE_INACTIVE", ["templateId"])
    assert error["message"]
    assert await counts(app) == before


async def test_archive_unknown_id_is_not_found(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template = await create_template(client, write_key)
    result = await _archive(client, write_key, random_id())
    assert_refused(result, "template", "NOT_FOUND", ["id"])
    assert (await read_template(client, write_key, template["id"]))["isActive"] is True


@pytest.mark.parametrize("bad_id", ["nope", "", "12345678-1234-1234-1234-12345678901g"])
async def test_archive_malformed_id_is_invalid(
    client: httpx.AsyncClient, write_key: str, bad_id: str
) -> None:
    template = await create_template(client, write_key)
    result = await _archive(client, write_key, bad_id)
    assert_refused(result, "template", "INVALID", ["id"])
    assert (await read_template(client, write_key, template["id"]))["isActive"] is True
