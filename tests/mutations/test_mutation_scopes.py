"""Every template and step mutation needs the 'write' scope: a read-only key gets a GraphQL error
coded FORBIDDEN and nothing is written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.graphql_client import gql
from tests.mutations.helpers import (
    add_email_step,
    add_linkedin_step,
    counts,
    create_template,
    read_template,
)

# name -> (document, variables built from the ids of existing rows)
MUTATIONS: dict[str, tuple[str, Any]] = {
    "createTemplate": (
        "mutation($input: CreateTemplateInput!) { createTemplate(input: $input) "
        "{ template { id } errors { code } } }",
        lambda ids: {"input": {"name": "Sneaky", "type": "EMAIL"}},
    ),
    "updateTemplate": (
        'mutation($id: ID!) { updateTemplate(id: $id, input: {name: "Renamed"}) '
        "{ template { id } errors { code } } }",
        lambda ids: {"id": ids["template"]},
    ),
    "archiveTemplate": (
        "mutation($id: ID!) { archiveTemplate(id: $id) { template { id } errors { code } } }",
        lambda ids: {"id": ids["template"]},
    ),
    "addEmailStep": (
        "mutation($id: ID!) { addEmailStep(templateId: $id, input: "
        '{stepNumber: 2, body: "A perfectly valid body"}) { step { id } errors { code } } }',
        lambda ids: {"id": ids["template"]},
    ),
    "updateEmailStep": (
        "mutation($id: ID!) { updateEmailStep(id: $id, input: {delayHours: 5}) "
        "{ step { id } errors { code } } }",
        lambda ids: {"id": ids["email"]},
    ),
    "removeEmailStep": (
        "mutation($id: ID!) { removeEmailStep(id: $id) { step { id } errors { code } } }",
        lambda ids: {"id": ids["email"]},
    ),
    "addLinkedInStep": (
        "mutation($id: ID!) { addLinkedInStep(templateId: $id, input: "
        "{stepNumber: 2, action: PROFILE_VISIT}) { step { id } errors { code } } }",
        lambda ids: {"id": ids["template"]},
    ),
    "updateLinkedInStep": (
        "mutation($id: ID!) { updateLinkedInStep(id: $id, input: {delayHours: 5}) "
        "{ step { id } errors { code } } }",
        lambda ids: {"id": ids["linkedin"]},
    ),
    "removeLinkedInStep": (
        "mutation($id: ID!) { removeLinkedInStep(id: $id) { step { id } errors { code } } }",
        lambda ids: {"id": ids["linkedin"]},
    ),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_read_only_key_is_forbidden_and_writes_nothing(
    app: Starlette, client: httpx.AsyncClient, write_key: str, read_key: str, name: str
) -> None:
    template = await create_template(client, write_key, name="Guarded")
    email = await add_email_step(client, write_key, template["id"], stepNumber=1)
    linkedin = await add_linkedin_step(client, write_key, template["id"], stepNumber=1)
    ids = {"template": template["id"], "email": email["id"], "linkedin": linkedin["id"]}
    before_rows = await counts(app)
    before = await read_template(client, write_key, template["id"])

    document, variables = MUTATIONS[name]
    body = await gql(client, read_key, document, variables(ids))

    assert body["data"] is None, body
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["path"] == [name]
    assert await counts(app) == before_rows
    assert await read_template(client, write_key, template["id"]) == before


async def test_read_only_key_can_still_read(
    client: httpx.AsyncClient, write_key: str, read_key: str
) -> None:
    template = await create_template(client, write_key, name="Readable")
    stored = await read_template(client, read_key, template["id"])
    assert stored["name"] == "Readable"
