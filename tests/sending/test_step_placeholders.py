"""A step whose text has a malformed placeholder is refused when it is written (code
MALFORMED_PLACEHOLDER, naming the field), not discovered at send time; nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.mutations.helpers import (
    ADD_EMAIL_STEP,
    ADD_LINKEDIN_STEP,
    EMAIL_STEP_FIELDS,
    ERRORS,
    LINKEDIN_STEP_FIELDS,
    add_email_step,
    add_linkedin_step,
    count_rows,
    create_template,
    mutate,
    read_template,
    step_by_id,
)

UPDATE_EMAIL_STEP = f"""
mutation UpdateEmailStep($id: ID!, $input: UpdateEmailStepInput!) {{
  updateEmailStep(id: $id, input: $input) {{ step {{ {EMAIL_STEP_FIELDS} }} {ERRORS} }}
}}
"""
UPDATE_LINKEDIN_STEP = f"""
mutation UpdateLinkedInStep($id: ID!, $input: UpdateLinkedInStepInput!) {{
  updateLinkedInStep(id: $id, input: $input) {{ step {{ {LINKEDIN_STEP_FIELDS} }} {ERRORS} }}
}}
"""
MALFORMED = [
    "Hello {{first_name, a quick question",
    "Hello first_name}}, a quick question",
    "Hello {{first_name.__class__}}, a quick question",
    "Hello {{ }}, a quick question for you",
    "Hello {{#list}}{{/list}}, a quick question",
]
GOOD_BODY = "Hello {{first_name|there}}, a quick question."


def _only_error(result: dict[str, Any], field: str) -> dict[str, Any]:
    assert result["step"] is None, result
    errors = result["errors"]
    assert len(errors) == 1, errors
    error: dict[str, Any] = errors[0]
    assert error["code"] == "MALFORMED_PLACEHOLDER", errors
    assert error["field"] == ["input", field], errors
    assert "malformed placeholder" in str(error["message"]), errors
    return error


async def test_add_email_step_refuses_a_malformed_placeholder(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template = await create_template(client, write_key)
    for field in ("subject", "body"):
        for text in MALFORMED:
            data = {"stepNumber": 1, "subject": "Hi {{first_name}}", "body": GOOD_BODY}
            result = await mutate(
                client, write_key, ADD_EMAIL_STEP, "addEmailStep",
                {"templateId": template["id"], "input": data | {field: text}},
            )  # fmt: skip
            _only_error(result, field)
    assert await count_rows(app, "email_steps") == 0
    # The same input with well-formed text is stored: the refusals were about the text.
    step = await add_email_step(client, write_key, template["id"], body=GOOD_BODY)
    assert step["body"] == GOOD_BODY


async def test_each_malformed_field_is_named(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template = await create_template(client, write_key)
    data = {"stepNumber": 1, "subject": "Hi {{name", "body": "Hello }} there, a question"}
    result = await mutate(
        client,
        write_key,
        ADD_EMAIL_STEP,
        "addEmailStep",
        {"templateId": template["id"], "input": data},
    )
    assert result["step"] is None
    assert sorted((e["code"], tuple(e["field"])) for e in result["errors"]) == [
        ("MALFORMED_PLACEHOLDER", ("input", "body")),
        ("MALFORMED_PLACEHOLDER", ("input", "subject")),
    ]
    assert await count_rows(app, "email_steps") == 0


@pytest.mark.parametrize("field", ["subject", "body"])
async def test_update_email_step_refuses_a_malformed_placeholder_and_keeps_the_step(
    app: Starlette, client: httpx.AsyncClient, write_key: str, field: str
) -> None:
    template = await create_template(client, write_key)
    step = await add_email_step(
        client, write_key, template["id"], subject="Hi {{first_name}}", body=GOOD_BODY
    )
    before = step_by_id(await read_template(client, write_key, template["id"]), "email", step["id"])

    for text in MALFORMED:
        result = await mutate(
            client, write_key, UPDATE_EMAIL_STEP, "updateEmailStep",
            {"id": step["id"], "input": {field: text}},
        )  # fmt: skip
        _only_error(result, field)

    after = step_by_id(await read_template(client, write_key, template["id"]), "email", step["id"])
    assert after == before
    assert await count_rows(app, "email_steps") == 1

    fixed = "Hello {{first_name|there}} and {{company|your team}}."
    result = await mutate(
        client, write_key, UPDATE_EMAIL_STEP, "updateEmailStep",
        {"id": step["id"], "input": {field: fixed}},
    )  # fmt: skip
    assert result["errors"] == [], result
    assert result["step"][field] == fixed


async def test_add_linkedin_step_refuses_a_malformed_message(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template = await create_template(client, write_key)
    for text in MALFORMED:
        data = {"stepNumber": 1, "action": "MESSAGE", "message": text}
        result = await mutate(
            client, write_key, ADD_LINKEDIN_STEP, "addLinkedInStep",
            {"templateId": template["id"], "input": data},
        )  # fmt: skip
        _only_error(result, "message")
    assert await count_rows(app, "linkedin_steps") == 0


async def test_update_linkedin_step_refuses_a_malformed_message_and_keeps_the_step(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template = await create_template(client, write_key)
    step = await add_linkedin_step(
        client, write_key, template["id"], action="MESSAGE", message="Hi {{first_name}}!"
    )
    before = step_by_id(
        await read_template(client, write_key, template["id"]), "linkedin", step["id"]
    )
    for text in MALFORMED:
        result = await mutate(
            client, write_key, UPDATE_LINKEDIN_STEP, "updateLinkedInStep",
            {"id": step["id"], "input": {"message": text}},
        )  # fmt: skip
        _only_error(result, "message")
    after = step_by_id(
        await read_template(client, write_key, template["id"]), "linkedin", step["id"]
    )
    assert after == before
