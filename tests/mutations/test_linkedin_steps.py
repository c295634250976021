"""addLinkedInStep, updateLinkedInStep, removeLinkedInStep: the message rules that depend on the
action, on both sides of every boundary, step numbers, soft removal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.graphql_client import gql
from tests.mutations.helpers import (
    ADD_LINKEDIN_STEP,
    LINKEDIN_STEP_FIELDS,
    REMOVE_LINKEDIN_STEP,
    add_email_step,
    add_linkedin_step,
    assert_refused,
    count_rows,
    create_template,
    error_fields,
    mutate,
    random_id,
    read_template,
    step_by_id,
)

UPDATE_LINKEDIN_STEP = f"""
mutation UpdateLinkedInStep($id: ID!, $input: UpdateLinkedInStepInput!) {{
  updateLinkedInStep(id: $id, input: $input) {{
    step {{ {LINKEDIN_STEP_FIELDS} }}
    errors {{ field code message }}
  }}
}}
"""

STEP_FIELDS = ("stepNumber", "action", "message", "delayHours", "isActive")


@pytest.fixture
async def template(client: httpx.AsyncClient, write_key: str) -> dict[str, Any]:
    return await create_template(client, write_key, name="LinkedIn sequence", type="LINKEDIN")


async def _add(
    client: httpx.AsyncClient, key: str, template_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    variables = {"templateId": template_id, "input": data}
    return await mutate(client, key, ADD_LINKEDIN_STEP, "addLinkedInStep", variables)


async def _update(
    client: httpx.AsyncClient, key: str, step_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    variables = {"id": step_id, "input": data}
    return await mutate(client, key, UPDATE_LINKEDIN_STEP, "updateLinkedInStep", variables)


async def _remove(client: httpx.AsyncClient, key: str, step_id: str) -> dict[str, Any]:
    return await mutate(client, key, REMOVE_LINKEDIN_STEP, "removeLinkedInStep", {"id": step_id})


async def _stored_step(
    client: httpx.AsyncClient, key: str, template: dict[str, Any], step_id: str
) -> dict[str, Any]:
    return step_by_id(await read_template(client, key, template["id"]), "linkedin", step_id)


# --- addLinkedInStep --------------------------------------------------------------------------


async def test_add_stores_every_field_and_reads_back(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    data = {
        "stepNumber": 3,
        "action": "MESSAGE",
        "message": "Thanks for connecting!",
        "delayHours": 24,
    }
    result = await _add(client, write_key, template["id"], data)
    assert result["errors"] == []
    created = result["step"]
    stored = await read_template(client, write_key, template["id"])
    step = step_by_id(stored, "linkedin", created["id"])
    assert {k: step[k] for k in STEP_FIELDS} == data | {"isActive": True}
    assert {k: created[k] for k in STEP_FIELDS} == data | {"isActive": True}
    assert stored["activeLinkedinSteps"] == [{"id": created["id"], "stepNumber": 3}]
    assert await count_rows(app, "linkedin_steps") == 1


async def test_add_defaults(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    result = await _add(
        client, write_key, template["id"], {"stepNumber": 1, "action": "PROFILE_VISIT"}
    )
    assert result["errors"] == []
    step = await _stored_step(client, write_key, template, result["step"]["id"])
    assert step["delayHours"] == 0
    assert step["message"] is None
    assert step["action"] == "PROFILE_VISIT"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "PROFILE_VISIT"}, None),
        ({"action": "PROFILE_VISIT", "message": None}, None),
        ({"action": "PROFILE_VISIT", "message": ""}, None),
        ({"action": "PROFILE_VISIT", "message": "   "}, None),
        ({"action": "CONNECTION_REQUEST"}, None),
        ({"action": "CONNECTION_REQUEST", "message": "c" * 300}, "c" * 300),
        ({"action": "MESSAGE", "message": "m"}, "m"),
        ({"action": "MESSAGE", "message": "m" * 1500}, "m" * 1500),
        ({"action": "MESSAGE", "message": "é" * 1500}, "é" * 1500),
        ({"action": "VOICE_MESSAGE"}, None),
        ({"action": "VOICE_MESSAGE", "message": None}, None),
        ({"action": "VOICE_MESSAGE", "message": "v" * 1500}, "v" * 1500),
    ],
    ids=[
        "visit-no-message",
        "visit-null-message",
        "visit-empty-message",
        "visit-blank-message",
        "connect-no-note",
        "connect-300",
        "message-1",
        "message-1500",
        "message-1500-non-ascii",
        "voice-no-message",
        "voice-null-message",
        "voice-1500",
    ],
)
async def test_add_message_rules_accepted(
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    data: dict[str, Any],
    message: str | None,
) -> None:
    result = await _add(client, write_key, template["id"], {"stepNumber": 1} | data)
    assert result["errors"] == [], result
    step = await _stored_step(client, write_key, template, result["step"]["id"])
    assert step["action"] == data["action"]
    assert step["message"] == message


@pytest.mark.parametrize(
    "data",
    [
        {"action": "CONNECTION_REQUEST", "message": "c" * 301},
        {"action": "MESSAGE"},
        {"action": "MESSAGE", "message": None},
        {"action": "MESSAGE", "message": ""},
        {"action": "MESSAGE", "message": " \t\n "},
        {"action": "MESSAGE", "message": "m" * 1501},
        {"action": "MESSAGE", "message": "  " + "m" * 1501 + "  "},
        {"action": "MESSAGE", "message": "hello\x00"},
        {"action": "VOICE_MESSAGE", "message": "v" * 1501},
        {"action": "PROFILE_VISIT", "message": "Hi"},
        {"action": "PROFILE_VISIT", "message": "p" * 1501},
    ],
    ids=[
        "connect-301",
        "message-absent",
        "message-null",
        "message-empty",
        "message-blank",
        "message-1501",
        "message-1501-after-trim",
        "message-nul",
        "voice-1501",
        "visit-with-message",
        "visit-with-1501-message",
    ],
)
async def test_add_message_rules_refused(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    data: dict[str, Any],
) -> None:
    result = await _add(client, write_key, template["id"], {"stepNumber": 1} | data)
    assert_refused(result, "step", "INVALID", ["input", "message"])
    assert await count_rows(app, "linkedin_steps") == 0


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("delayHours", 0, True),
        ("delayHours", 720, True),
        ("delayHours", -1, False),
        ("delayHours", 721, False),
        ("stepNumber", 1, True),
        ("stepNumber", 0, False),
        ("stepNumber", -3, False),
    ],
)
async def test_add_number_boundaries(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    field: str,
    value: int,
    ok: bool,
) -> None:
    data = {"stepNumber": 1, "action": "CONNECTION_REQUEST", field: value}
    result = await _add(client, write_key, template["id"], data)
    if ok:
        assert result["errors"] == []
        step = await _stored_step(client, write_key, template, result["step"]["id"])
        assert step[field] == value
    else:
        assert_refused(result, "step", "INVALID", ["input", field])
        assert await count_rows(app, "linkedin_steps") == 0


async def test_add_with_explicit_null_delay_is_not_a_graphql_error(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    """``delayHours: Int = 0`` is nullable in the contract: null must end as the default or as a
    user error on delayHours, never as an unhandled error."""
    data = {"stepNumber": 1, "action": "PROFILE_VISIT", "delayHours": None}
    body = await gql(
        client, write_key, ADD_LINKEDIN_STEP, {"templateId": template["id"], "input": data}
    )
    assert "errors" not in body, body
    result = body["data"]["addLinkedInStep"]
    if result["errors"]:
        assert_refused(result, "step", "INVALID", ["input", "delayHours"])
        assert await count_rows(app, "linkedin_steps") == 0
    else:
        step = await _stored_step(client, write_key, template, result["step"]["id"])
        assert step["delayHours"] == 0


async def test_add_all_errors_reported_together(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    data = {"stepNumber": 0, "action": "MESSAGE", "delayHours": 721}
    result = await _add(client, write_key, template["id"], data)
    assert result["step"] is None
    assert error_fields(result) == [
        ("input", "delayHours"),
        ("input", "message"),
        ("input", "stepNumber"),
    ]
    assert await count_rows(app, "linkedin_steps") == 0


async def test_add_to_unknown_template_is_not_found(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    result = await _add(
        client, write_key, random_id(), {"stepNumber": 1, "action": "PROFILE_VISIT"}
    )
    assert_refused(result, "step", "NOT_FOUND", ["templateId"])
    assert await count_rows(app, "linkedin_steps") == 0


async def test_add_to_malformed_template_id_is_invalid(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    result = await _add(client, write_key, "nope", {"stepNumber": 1, "action": "PROFILE_VISIT"})
    assert_refused(result, "step", "INVALID", ["templateId"])
    assert await count_rows(app, "linkedin_steps") == 0


async def test_add_taken_number_is_a_step_conflict(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    await add_linkedin_step(client, write_key, template["id"], stepNumber=2)
    result = await _add(
        client, write_key, template["id"], {"stepNumber": 2, "action": "PROFILE_VISIT"}
    )
    assert_refused(result, "step", "STEP_CONFLICT", ["input", "stepNumber"])
    assert await count_rows(app, "linkedin_steps") == 1


async def test_email_and_linkedin_steps_may_share_a_number(
    app: Starlette, client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    email = await add_email_step(client, write_key, template["id"], stepNumber=1)
    linkedin = await add_linkedin_step(client, write_key, template["id"], stepNumber=1)
    stored = await read_template(client, write_key, template["id"])
    assert stored["activeEmailSteps"] == [{"id": email["id"], "stepNumber": 1}]
    assert stored["activeLinkedinSteps"] == [{"id": linkedin["id"], "stepNumber": 1}]
    # Moving the email step onto a number only a LinkedIn step holds is no conflict either.
    await add_linkedin_step(
        client, write_key, template["id"], stepNumber=2, action="PROFILE_VISIT", message=None
    )
    body = await gql(
        client,
        write_key,
        "mutation($id: ID!) { updateEmailStep(id: $id, input: {stepNumber: 2}) "
        "{ step { stepNumber } errors { code } } }",
        {"id": email["id"]},
    )
    assert body["data"]["updateEmailStep"] == {"step": {"stepNumber": 2}, "errors": []}


# --- updateLinkedInStep -----------------------------------------------------------------------


async def _added(
    client: httpx.AsyncClient, key: str, template: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    created = await add_linkedin_step(client, key, template["id"], **fields)
    return await _stored_step(client, key, template, created["id"])


@pytest.fixture
async def step(client: httpx.AsyncClient, write_key: str, template: dict[str, Any]) -> dict:
    """A connection request with a note."""
    return await _added(
        client,
        write_key,
        template,
        stepNumber=1,
        action="CONNECTION_REQUEST",
        message="Glad to connect",
        delayHours=12,
    )


async def test_update_every_field_reads_back(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    data = {"stepNumber": 4, "action": "MESSAGE", "message": "m" * 1500, "delayHours": 720}
    result = await _update(client, write_key, step["id"], data)
    assert result["errors"] == []
    stored = await _stored_step(client, write_key, template, step["id"])
    assert {k: stored[k] for k in STEP_FIELDS} == data | {"isActive": True}


@pytest.mark.parametrize(
    ("field", "value"),
    [("stepNumber", 7), ("message", "Another note"), ("delayHours", 0), ("action", "MESSAGE")],
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


async def test_update_null_message_clears_it(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    result = await _update(client, write_key, step["id"], {"message": None})
    assert result["errors"] == []
    stored = await _stored_step(client, write_key, template, step["id"])
    assert stored["message"] is None
    assert stored["action"] == "CONNECTION_REQUEST"


@pytest.mark.parametrize("field", ["stepNumber", "action", "delayHours"])
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
    data = {"stepNumber": None, "action": None, "delayHours": None}
    result = await _update(client, write_key, step["id"], data)
    assert result["step"] is None
    assert error_fields(result) == [
        ("input", "action"),
        ("input", "delayHours"),
        ("input", "stepNumber"),
    ]
    assert await _stored_step(client, write_key, template, step["id"]) == step


async def test_change_to_profile_visit_while_it_has_a_message_refused(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    result = await _update(client, write_key, step["id"], {"action": "PROFILE_VISIT"})
    assert_refused(result, "step", "INVALID", ["input", "message"])
    assert await _stored_step(client, write_key, template, step["id"]) == step


async def test_change_to_profile_visit_clearing_the_message_accepted(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    data = {"action": "PROFILE_VISIT", "message": None}
    result = await _update(client, write_key, step["id"], data)
    assert result["errors"] == []
    stored = await _stored_step(client, write_key, template, step["id"])
    assert (stored["action"], stored["message"]) == ("PROFILE_VISIT", None)


async def test_change_to_message_with_a_message_in_the_same_update_accepted(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    visit = await _added(
        client, write_key, template, stepNumber=1, action="PROFILE_VISIT", message=None
    )
    data = {"action": "MESSAGE", "message": "Thanks for accepting!"}
    result = await _update(client, write_key, visit["id"], data)
    assert result["errors"] == []
    stored = await _stored_step(client, write_key, template, visit["id"])
    assert (stored["action"], stored["message"]) == ("MESSAGE", "Thanks for accepting!")


async def test_change_to_message_without_a_message_refused(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    visit = await _added(
        client, write_key, template, stepNumber=1, action="PROFILE_VISIT", message=None
    )
    result = await _update(client, write_key, visit["id"], {"action": "MESSAGE"})
    assert_refused(result, "step", "INVALID", ["input", "message"])
    assert await _stored_step(client, write_key, template, visit["id"]) == visit


async def test_clearing_the_message_of_a_message_step_refused(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    message = await _added(
        client, write_key, template, stepNumber=1, action="MESSAGE", message="Hello again"
    )
    for data in ({"message": None}, {"message": "   "}):
        result = await _update(client, write_key, message["id"], data)
        assert_refused(result, "step", "INVALID", ["input", "message"])
    assert await _stored_step(client, write_key, template, message["id"]) == message


async def test_change_to_connection_request_with_a_long_message_refused(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    message = await _added(
        client, write_key, template, stepNumber=1, action="MESSAGE", message="m" * 301
    )
    result = await _update(client, write_key, message["id"], {"action": "CONNECTION_REQUEST"})
    assert_refused(result, "step", "INVALID", ["input", "message"])
    assert await _stored_step(client, write_key, template, message["id"]) == message
    ok = await _update(
        client, write_key, message["id"], {"action": "CONNECTION_REQUEST", "message": "m" * 300}
    )
    assert ok["errors"] == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"message": "c" * 301}, "message"),
        ({"action": "MESSAGE", "message": "m" * 1501}, "message"),
        ({"delayHours": -1}, "delayHours"),
        ({"delayHours": 721}, "delayHours"),
        ({"stepNumber": 0}, "stepNumber"),
    ],
    ids=["connect-301", "message-1501", "delay-minus-1", "delay-721", "step-0"],
)
async def test_update_rule_breaking_values_refused(
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
    data: dict[str, Any],
    field: str,
) -> None:
    result = await _update(client, write_key, step["id"], data)
    assert_refused(result, "step", "INVALID", ["input", field])
    assert await _stored_step(client, write_key, template, step["id"]) == step


@pytest.mark.parametrize(
    "data",
    [{"message": "c" * 300}, {"delayHours": 0}, {"delayHours": 720}, {"stepNumber": 1}],
    ids=["connect-300", "delay-0", "delay-720", "step-1"],
)
async def test_update_boundary_values_accepted(
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
    data: dict[str, Any],
) -> None:
    result = await _update(client, write_key, step["id"], data)
    assert result["errors"] == []
    stored = await _stored_step(client, write_key, template, step["id"])
    assert {k: stored[k] for k in data} == data


async def test_update_to_taken_number_is_a_step_conflict(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    second = await _added(
        client, write_key, template, stepNumber=2, action="PROFILE_VISIT", message=None
    )
    result = await _update(client, write_key, second["id"], {"stepNumber": 1})
    assert_refused(result, "step", "STEP_CONFLICT", ["input", "stepNumber"])
    assert await _stored_step(client, write_key, template, second["id"]) == second


async def test_update_unknown_and_malformed_ids(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    unknown = await _update(client, write_key, random_id(), {"delayHours": 1})
    assert_refused(unknown, "step", "NOT_FOUND", ["id"])
    malformed = await _update(client, write_key, "nope", {"delayHours": 1})
    assert_refused(malformed, "step", "INVALID", ["id"])
    assert await _stored_step(client, write_key, template, step["id"]) == step


# --- removeLinkedInStep -----------------------------------------------------------------------


async def test_remove_is_a_soft_delete_that_frees_the_number(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template: dict[str, Any],
    step: dict[str, Any],
) -> None:
    result = await _remove(client, write_key, step["id"])
    assert result["errors"] == []
    assert result["step"]["isActive"] is False

    stored = await read_template(client, write_key, template["id"])
    assert stored["activeLinkedinSteps"] == []
    removed = step_by_id(stored, "linkedin", step["id"])
    assert removed["isActive"] is False
    assert removed["message"] == step["message"]

    again = await add_linkedin_step(
        client, write_key, template["id"], stepNumber=1, action="PROFILE_VISIT", message=None
    )
    stored = await read_template(client, write_key, template["id"])
    assert stored["activeLinkedinSteps"] == [{"id": again["id"], "stepNumber": 1}]
    assert await count_rows(app, "linkedin_steps") == 2


async def test_remove_unknown_and_malformed_ids(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any], step: dict[str, Any]
) -> None:
    assert_refused(await _remove(client, write_key, random_id()), "step", "NOT_FOUND", ["id"])
    assert_refused(await _remove(client, write_key, "nope"), "step", "INVALID", ["id"])
    assert await _stored_step(client, write_key, template, step["id"]) == step


async def test_remove_email_id_through_linkedin_mutation_is_not_found(
    client: httpx.AsyncClient, write_key: str, template: dict[str, Any]
) -> None:
    email = await add_email_step(client, write_key, template["id"], stepNumber=1)
    assert_refused(await _remove(client, write_key, email["id"]), "step", "NOT_FOUND", ["id"])
    stored = await read_template(client, write_key, template["id"])
    assert step_by_id(stored, "email", email["id"])["isActive"] is True
