"""addEmailStep, updateEmailStep, removeEmailStep: rules on both sides of every boundary, step
number uniqueness among active steps, soft removal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.graphql_client import gql
from tests.mutations.helpers import (
    ADD_EMAIL_STEP,
    EMAIL_STEP_FIELDS,
    REMOVE_EMAIL_STEP,
    add_email_step,
    add_linkedin_step,
    assert_refused,
    count_rows,
    counts,
    create_template,
    error_fields,
    mutate,
    random_id,
    read_template,
    step_by_id,
)

UPDATE_EMAIL_STEP = f"""
mutation UpdateEmailStep($id: ID!, $input: UpdateEmailStepInput!) {{
  updateEmailStep(id: $id, input: $input) {{
    step {{ {EMAIL_STEP_FIELDS} }}
    errors {{ field code message }}
  }}
}}
"""

BODY = "Hi {{first_name}}, do you have 10 minutes this week?"
STEP_FIELDS = ("stepNumber", "subject", "body", "delayHours", "abVariant", "isActive")


@pytest.fixture
async def template(client: httpx.AsyncClient, write_key: str) -> dict[str, Any]:
    return await create_template(client, write_key, name="Email sequence", type="EMAIL")


async def _add(
    client: httpx.AsyncClient, key: str, template_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    variables = {"templateId": template_id, "input": data}
    return await mutate(client, key, ADD_EMAIL_STEP, "addEmailStep", variables)


async def _update(
    client: httpx.AsyncClient, key: str, step_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    variables = {"id": step_id, "input": data}
    return await mutate(client, key, UPDATE_EMAIL_STEP, "updateEmailStep", variables)


async def _remove(client: httpx.AsyncClient, key: str, step_id: str) -> dict[str, Any]:
    return await mutate(client, key, REMOVE_EMAIL_STEP, "removeEmailStep", {"id": step_id})


def _valid(**overrides: Any) -> dict[str, Any]:
    return {"stepNumber": 1, "body": BODY} | overrides


# --- addEmailStep -----------------------------------------------------------------------------


async def test_add_stores_every_field_and_reads_back(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    data = {
        "stepNumber": 2,
        "subject": "Quick question",
        "body": BODY,
        "delayHours": 48,
        "abVariant": "B",
    }
    result = await _add(client, write_key, template["id"], data)
    assert result["errors"] == []
    created = result["step"]
    stored = await read_template(client, write_key, template["id"])
    step = step_by_id(stored, "email", created["id"])
    expected = data | {"isActive": True}
    assert {k: step[k] for k in STEP_FIELDS} == expected
    assert {k: created[k] for k in STEP_FIELDS} == expected
    assert stored["activeEmailSteps"] == [{"id": created["id"], "stepNumber": 2}]
    assert await count_rows(app, "email_steps") == 1


async def test_add_defaults(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    created = await add_email_step(client, write_key, template["id"], stepNumber=1, body=BODY)
    step = step_by_id(
        await read_template(client, write_key, template["id"]), "email", created["id"]
    )
    assert step["delayHours"] == 0
    assert step["subject"] is None
    assert step["abVariant"] is None
    assert step["isActive"] is True


async def test_steps_are_ordered_by_number(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    for number in (3, 1, 2):
        await add_email_step(client, write_key, template["id"], stepNumber=number)
    stored = await read_template(client, write_key, template["id"])
    assert [s["stepNumber"] for s in stored["activeEmailSteps"]] == [1, 2, 3]


async def test_add_with_explicit_null_delay_is_not_a_graphql_error(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    """``delayHours: Int = 0`` is nullable in the contract: an explicit null must end as the
    default (0) or as a user error on delayHours, never as an unhandled error."""
    body = await gql(
        client,
        write_key,
        ADD_EMAIL_STEP,
        {"templateId": template["id"], "input": _valid(delayHours=None)},
    )
    assert "errors" not in body, body
    result = body["data"]["addEmailStep"]
    if result["errors"]:
        assert_refused(result, "step", "INVALID", ["input", "delayHours"])
        assert await count_rows(app, "email_steps") == 0
    else:
        step = step_by_id(
            await read_template(client, write_key, template["id"]), "email", result["step"]["id"]
        )
        assert step["delayHours"] == 0


@pytest.mark.parametrize(
    ("field", "value", "stored_as"),
    [
        ("body", "0123456789", "0123456789"),
        ("body", "   0123456789   ", "0123456789"),
        ("body", "b" * 50000, "b" * 50000),
        ("body", "é" * 50000, "é" * 50000),
        ("subject", "s" * 255, "s" * 255),
        ("subject", None, None),
        ("delayHours", 0, 0),
        ("delayHours", 720, 720),
        ("stepNumber", 1, 1),
    ],
    ids=[
        "body-10",
        "body-10-after-trim",
        "body-50000",
        "body-50000-non-ascii",
        "subject-255",
        "subject-null",
        "delay-0",
        "delay-720",
        "step-1",
    ],
)
async def test_add_boundary_values_accepted(
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    field: str,
    value: Any,
    stored_as: Any,
) -> None:
    result = await _add(client, write_key, template["id"], _valid(**{field: value}))
    assert result["errors"] == [], result
    stored = await read_template(client, write_key, template["id"])
    assert step_by_id(stored, "email", result["step"]["id"])[field] == stored_as


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", "123456789"),
        ("body", "  123456789  "),
        ("body", ""),
        ("body", "          "),
        ("body", "b" * 50001),
        ("body", "0123456789\x00"),
        ("subject", "s" * 256),
        ("delayHours", -1),
        ("delayHours", 721),
        ("delayHours", -(2**31)),
        ("stepNumber", 0),
        ("stepNumber", -1),
        ("stepNumber", -(2**31)),
    ],
    ids=[
        "body-9",
        "body-9-after-trim",
        "body-empty",
        "body-blank",
        "body-50001",
        "body-nul",
        "subject-256",
        "delay-minus-1",
        "delay-721",
        "delay-min-int",
        "step-0",
        "step-minus-1",
        "step-min-int",
    ],
)
async def test_add_rule_breaking_values_refused(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    result = await _add(client, write_key, template["id"], _valid(**{field: value}))
    assert_refused(result, "step", "INVALID", ["input", field])
    assert await count_rows(app, "email_steps") == 0


async def test_add_all_errors_reported_together(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    data = {"stepNumber": 0, "body": "short", "subject": "s" * 256, "delayHours": 721}
    result = await _add(client, write_key, template["id"], data)
    assert result["step"] is None
    assert error_fields(result) == [
        ("input", "body"),
        ("input", "delayHours"),
        ("input", "stepNumber"),
        ("input", "subject"),
    ]
    assert {e["code"] for e in result["errors"]} == {"INVALID"}
    assert await count_rows(app, "email_steps") == 0


async def test_add_to_unknown_template_is_not_found(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    result = await _add(client, write_key, random_id(), _valid())
    assert_refused(result, "step", "NOT_FOUND", ["templateId"])
    assert await count_rows(app, "email_steps") == 0


@pytest.mark.parametrize("bad_id", ["nope", ""])
async def test_add_to_malformed_template_id_is_invalid(
    app: Starlette, client: httpx.AsyncClient, write_key: str, bad_id: str
) -> None:
    result = await _add(client, write_key, bad_id, _valid())
    assert_refused(result, "step", "INVALID", ["templateId"])
    assert await count_rows(app, "email_steps") == 0


async def test_add_taken_number_is_a_step_conflict(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    first = await add_email_step(client, write_key, template["id"], stepNumber=1)
    result = await _add(client, write_key, template["id"], _valid(stepNumber=1, subject="Dup"))
    assert_refused(result, "step", "STEP_CONFLICT", ["input", "stepNumber"])
    stored = await read_template(client, write_key, template["id"])
    assert [s["id"] for s in stored["emailSteps"]] == [first["id"]]
    assert await count_rows(app, "email_steps") == 1


async def test_same_number_allowed_on_other_template_and_other_channel(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    other = await create_template(client, write_key, name="Other")
    await add_email_step(client, write_key, template["id"], stepNumber=1)
    await add_email_step(client, write_key, other["id"], stepNumber=1)
    await add_linkedin_step(client, write_key, template["id"], stepNumber=1)
    assert await count_rows(app, "email_steps") == 2
    assert await count_rows(app, "linkedin_steps") == 1


# --- updateEmailStep --------------------------------------------------------------------------


@pytest.fixture
async def step(client: httpx.AsyncClient, write_key: str, template: dict[str, Any]) -> dict:
    created = await add_email_step(
        client,
        write_key,
        template["id"],
        stepNumber=1,
        subject="Original subject",
        body=BODY,
        delayHours=24,
        abVariant="A",
    )
    stored = await read_template(client, write_key, template["id"])
    return step_by_id(stored, "email", created["id"])


async def _stored_step(
    client: httpx.AsyncClient, key: str, template: dict[str, Any], step_id: str
) -> dict[str, Any]:
    return step_by_id(await read_template(client, key, template["id"]), "email", step_id)


async def test_update_every_field_reads_back(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    data = {
        "stepNumber": 5,
        "subject": "New subject",
        "body": "A brand new body text",
        "delayHours": 72,
        "abVariant": "B",
    }
    result = await _update(client, write_key, step["id"], data)
    assert result["errors"] == []
    stored = await _stored_step(client, write_key, template, step["id"])
    assert {k: stored[k] for k in STEP_FIELDS} == data | {"isActive": True}
    assert stored["createdAt"] == step["createdAt"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stepNumber", 2),
        ("subject", "Only subject"),
        ("body", "Only the body changes"),
        ("delayHours", 720),
        ("abVariant", "C"),
    ],
)
async def test_update_left_out_fields_unchanged(
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    result = await _update(client, write_key, step["id"], {field: value})
    assert result["errors"] == []
    stored = await _stored_step(client, write_key, template, step["id"])
    assert stored[field] == value
    for other in STEP_FIELDS:
        if other != field:
            assert stored[other] == step[other], other


@pytest.mark.parametrize("field", ["subject", "abVariant"])
async def test_update_null_clears_optional_field(
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
    field: str,
) -> None:
    result = await _update(client, write_key, step["id"], {field: None})
    assert result["errors"] == []
    stored = await _stored_step(client, write_key, template, step["id"])
    assert stored[field] is None
    for other in STEP_FIELDS:
        if other != field:
            assert stored[other] == step[other], other


@pytest.mark.parametrize("field", ["body", "stepNumber", "delayHours"])
async def test_update_null_on_required_field_refused(
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
    field: str,
) -> None:
    result = await _update(client, write_key, step["id"], {field: None})
    assert_refused(result, "step", "INVALID", ["input", field])
    assert await _stored_step(client, write_key, template, step["id"]) == step


async def test_update_nulls_give_one_error_per_field(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    data = {"body": None, "stepNumber": None, "delayHours": None, "subject": None}
    result = await _update(client, write_key, step["id"], data)
    assert result["step"] is None
    assert error_fields(result) == [
        ("input", "body"),
        ("input", "delayHours"),
        ("input", "stepNumber"),
    ]
    assert await _stored_step(client, write_key, template, step["id"]) == step


@pytest.mark.parametrize(
    ("field", "value", "stored_as"),
    [
        ("body", "0123456789", "0123456789"),
        ("body", "b" * 50000, "b" * 50000),
        ("subject", "s" * 255, "s" * 255),
        ("delayHours", 0, 0),
        ("delayHours", 720, 720),
        ("stepNumber", 1, 1),
    ],
    ids=["body-10", "body-50000", "subject-255", "delay-0", "delay-720", "step-1"],
)
async def test_update_boundary_values_accepted(
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
    field: str,
    value: Any,
    stored_as: Any,
) -> None:
    result = await _update(client, write_key, step["id"], {field: value})
    assert result["errors"] == [], result
    assert (await _stored_step(client, write_key, template, step["id"]))[field] == stored_as


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", "123456789"),
        ("body", "  123456789  "),
        ("body", "   "),
        ("body", "b" * 50001),
        ("subject", "s" * 256),
        ("delayHours", -1),
        ("delayHours", 721),
        ("stepNumber", 0),
        ("stepNumber", -5),
    ],
    ids=[
        "body-9",
        "body-9-after-trim",
        "body-blank",
        "body-50001",
        "subject-256",
        "delay-minus-1",
        "delay-721",
        "step-0",
        "step-minus-5",
    ],
)
async def test_update_rule_breaking_values_refused(
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    result = await _update(client, write_key, step["id"], {field: value})
    assert_refused(result, "step", "INVALID", ["input", field])
    assert await _stored_step(client, write_key, template, step["id"]) == step


async def test_update_to_taken_number_is_a_step_conflict(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    second = await add_email_step(client, write_key, template["id"], stepNumber=2)
    second = await _stored_step(client, write_key, template, second["id"])
    result = await _update(client, write_key, second["id"], {"stepNumber": 1, "body": "x" * 20})
    assert_refused(result, "step", "STEP_CONFLICT", ["input", "stepNumber"])
    assert await _stored_step(client, write_key, template, second["id"]) == second
    assert await _stored_step(client, write_key, template, step["id"]) == step


async def test_update_keeping_own_number_is_fine(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    result = await _update(client, write_key, step["id"], {"stepNumber": 1, "subject": "Same"})
    assert result["errors"] == []
    assert (await _stored_step(client, write_key, template, step["id"]))["subject"] == "Same"


async def test_update_unknown_id_is_not_found(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    result = await _update(client, write_key, random_id(), {"subject": "x"})
    assert_refused(result, "step", "NOT_FOUND", ["id"])
    assert await _stored_step(client, write_key, template, step["id"]) == step


async def test_update_malformed_id_is_invalid(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    result = await _update(client, write_key, "nope", {"subject": "x"})
    assert_refused(result, "step", "INVALID", ["id"])
    assert await _stored_step(client, write_key, template, step["id"]) == step


async def test_update_linkedin_id_through_email_mutation_is_not_found(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    linkedin = await add_linkedin_step(client, write_key, template["id"], stepNumber=1)
    result = await _update(client, write_key, linkedin["id"], {"body": "a valid body"})
    assert_refused(result, "step", "NOT_FOUND", ["id"])


# --- removeEmailStep --------------------------------------------------------------------------


async def test_remove_is_a_soft_delete(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
) -> None:
    result = await _remove(client, write_key, step["id"])
    assert result["errors"] == []
    assert result["step"]["id"] == step["id"]
    assert result["step"]["isActive"] is False

    stored = await read_template(client, write_key, template["id"])
    assert stored["activeEmailSteps"] == []
    removed = step_by_id(stored, "email", step["id"])
    assert removed["isActive"] is False
    assert {k: removed[k] for k in STEP_FIELDS if k != "isActive"} == {
        k: step[k] for k in STEP_FIELDS if k != "isActive"
    }
    assert await count_rows(app, "email_steps") == 1


async def test_remove_frees_the_step_number(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
) -> None:
    assert (await _remove(client, write_key, step["id"]))["errors"] == []
    again = await add_email_step(
        client, write_key, template["id"], stepNumber=1, body="Take two: hello again"
    )
    stored = await read_template(client, write_key, template["id"])
    assert stored["activeEmailSteps"] == [{"id": again["id"], "stepNumber": 1}]
    assert {s["id"] for s in stored["emailSteps"]} == {step["id"], again["id"]}
    assert await count_rows(app, "email_steps", "step_number = 1") == 2
    assert await count_rows(app, "email_steps", "step_number = 1 AND is_active") == 1


async def test_update_to_number_of_removed_step_is_fine(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    second = await add_email_step(client, write_key, template["id"], stepNumber=2)
    assert (await _remove(client, write_key, step["id"]))["errors"] == []
    result = await _update(client, write_key, second["id"], {"stepNumber": 1})
    assert result["errors"] == []
    stored = await read_template(client, write_key, template["id"])
    assert stored["activeEmailSteps"] == [{"id": second["id"], "stepNumber": 1}]


async def test_remove_twice_is_not_a_graphql_error_and_stays_removed(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    assert (await _remove(client, write_key, step["id"]))["errors"] == []
    second = await _remove(client, write_key, step["id"])  # payload, never a GraphQL error
    assert second["errors"] == [] or second["step"] is None
    assert (await _stored_step(client, write_key, template, step["id"]))["isActive"] is False


async def test_remove_unknown_and_malformed_ids(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
) -> None:
    assert_refused(await _remove(client, write_key, random_id()), "step", "NOT_FOUND", ["id"])
    assert_refused(await _remove(client, write_key, "nope"), "step", "INVALID", ["id"])
    assert await _stored_step(client, write_key, template, step["id"]) == step


async def test_refused_step_writes_change_no_table(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    before = await counts(app)
    await _add(client, write_key, template["id"], _valid(body="too short"))
    await _add(client, write_key, random_id(), _valid())
    assert await counts(app) == before
