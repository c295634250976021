"""What a contact needs to be enrolled (issue 23): an address in metadata for each channel the
template sends on (``email``; ``linkedin_url``, a linkedin.com/in/ profile), a non-blank value
for each ``{{variable}}`` the template's active steps on those channels use without a fallback,
and no suppressed address. enrollContact refuses such a contact with the reason as its code, on
the metadata field at fault, and writes nothing; bulkEnroll skips it, lists it in ``skipped``
with its index and reason, and enrolls the others. Malformed input still refuses the whole
request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.lifecycle.helpers import (
    ENROLL_CONTACT,
    REMOVE_EMAIL_STEP,
    add_email_step,
    add_linkedin_step,
    assert_refused,
    bulk_enroll,
    create_template,
    engine_of,
    enroll,
    enrollment_rows,
    instance_in,
    instance_row,
    mutate,
    ok,
    person,
    suppress,
)

GOOD = {
    "email": "ada@example.com",
    "linkedin_url": "https://www.linkedin.com/in/ada-lovelace",
    "first_name": "Ada",
}
"""A value for each field a template of this module asks for."""


async def _template(client: httpx.AsyncClient, key: str, template_type: str) -> str:
    """A template of ``template_type`` whose steps (on each channel it sends on) use
    {{first_name}} without a fallback."""
    template_id = await create_template(client, key, template_type)
    if template_type in ("EMAIL", "MULTI_CHANNEL"):
        await add_email_step(client, key, template_id, 1, 0)  # "Hello {{first_name}}, ..."
    if template_type in ("LINKEDIN", "MULTI_CHANNEL"):
        await add_linkedin_step(
            client, key, template_id, 1, 2, "MESSAGE", "Hi {{first_name}}, glad to connect."
        )
    return template_id


async def _instance(
    client: httpx.AsyncClient, key: str, engine: AsyncEngine, template_type: str
) -> str:
    template_id = await _template(client, key, template_type)
    return await instance_in(client, key, engine, template_id, "active")


async def _enroll_raw(
    client: httpx.AsyncClient, key: str, instance_id: str, contact_id: str, metadata: Any
) -> dict[str, Any]:
    variables = {
        "instanceId": instance_id,
        "input": {"contactId": contact_id, "metadata": metadata},
    }
    return await mutate(client, key, ENROLL_CONTACT, "enrollContact", variables)


async def _state(engine: AsyncEngine, instance_id: str) -> tuple[int, list[dict[str, Any]]]:
    total = (await instance_row(engine, instance_id))["total_enrolled"]
    return total, await enrollment_rows(engine, instance_id)


def _without(metadata: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k not in keys}


EMAIL_ONLY = _without(GOOD, "linkedin_url")
LINKEDIN_ONLY = _without(GOOD, "email")
# (template type, metadata, code, the metadata field named)
REFUSALS = [
    ("EMAIL", _without(EMAIL_ONLY, "email"), "ADDRESS_MISSING", "email"),
    ("EMAIL", EMAIL_ONLY | {"email": "   "}, "ADDRESS_MISSING", "email"),
    ("EMAIL", EMAIL_ONLY | {"email": "ada.example.com"}, "ADDRESS_INVALID", "email"),
    ("EMAIL", EMAIL_ONLY | {"email": "ada@localhost"}, "ADDRESS_INVALID", "email"),
    ("LINKEDIN", _without(LINKEDIN_ONLY, "linkedin_url"), "ADDRESS_MISSING", "linkedin_url"),
    (
        "LINKEDIN",
        LINKEDIN_ONLY | {"linkedin_url": "https://twitter.com/ada"},
        "ADDRESS_INVALID",
        "linkedin_url",
    ),
    (
        "LINKEDIN",
        LINKEDIN_ONLY | {"linkedin_url": "https://www.linkedin.com/company/acme"},
        "ADDRESS_INVALID",
        "linkedin_url",
    ),
    ("MULTI_CHANNEL", EMAIL_ONLY, "ADDRESS_MISSING", "linkedin_url"),
    ("MULTI_CHANNEL", LINKEDIN_ONLY, "ADDRESS_MISSING", "email"),
    ("EMAIL", _without(EMAIL_ONLY, "first_name"), "VARIABLE_MISSING", "first_name"),
    ("EMAIL", EMAIL_ONLY | {"first_name": " \t"}, "VARIABLE_MISSING", "first_name"),
    ("EMAIL", EMAIL_ONLY | {"first_name": None}, "VARIABLE_MISSING", "first_name"),
    ("EMAIL", EMAIL_ONLY | {"first_name": {"given": "Ada"}}, "VARIABLE_MISSING", "first_name"),
    ("LINKEDIN", _without(LINKEDIN_ONLY, "first_name"), "VARIABLE_MISSING", "first_name"),
    ("MULTI_CHANNEL", _without(GOOD, "first_name"), "VARIABLE_MISSING", "first_name"),
]
REFUSAL_IDS = [
    "email-no-address",
    "email-blank-address",
    "email-no-at-sign",
    "email-no-domain-dot",
    "linkedin-no-url",
    "linkedin-other-site",
    "linkedin-company-page",
    "multi-no-linkedin-url",
    "multi-no-email",
    "email-variable-absent",
    "email-variable-blank",
    "email-variable-null",
    "email-variable-object",
    "linkedin-variable-absent",
    "multi-variable-absent",
]


@pytest.mark.parametrize(("template_type", "metadata", "code", "field"), REFUSALS, ids=REFUSAL_IDS)
async def test_enroll_contact_refuses_what_the_template_cannot_use_and_writes_nothing(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template_type: str,
    metadata: dict[str, Any],
    code: str,
    field: str,
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, template_type)
    before = await _state(engine, instance_id)

    result = await _enroll_raw(client, write_key, instance_id, "c", metadata)

    error = assert_refused(result, "enrollment", code, ["input", "metadata", field])
    assert field in error["message"], error
    assert await _state(engine, instance_id) == before
    # With that one field put right, the same contact is enrolled: it was the only fault.
    fixed = metadata | {field: GOOD[field]}
    enrolled = ok(await _enroll_raw(client, write_key, instance_id, "c", fixed), "enrollment")
    assert enrolled["metadata"] == fixed


async def test_a_contact_without_metadata_has_no_address(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """Omitted and empty metadata were stored as {} before; every campaign sends somewhere, so
    now neither can be enrolled."""
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, "EMAIL")
    for data in ({"contactId": "c"}, {"contactId": "c", "metadata": {}}):
        result = await mutate(
            client,
            write_key,
            ENROLL_CONTACT,
            "enrollContact",
            {"instanceId": instance_id, "input": data},
        )
        assert_refused(result, "enrollment", "ADDRESS_MISSING", ["input", "metadata", "email"])
    assert await _state(engine, instance_id) == (0, [])


async def test_only_variables_without_a_fallback_in_active_steps_on_used_channels_count(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """An EMAIL template: {{company}} in a subject and {{ role }} in a body are needed;
    {{first_name|there}} has a fallback, {{team}} is in a removed step, {{nickname}} in a
    LinkedIn step that an EMAIL campaign does not send."""
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "EMAIL")
    await add_email_step(
        client,
        write_key,
        template_id,
        1,
        0,
        body="Hi {{first_name|there}}, a note for the {{ role }}.",
        subject="About {{company}}",
    )
    removed = await add_email_step(
        client, write_key, template_id, 2, 24, body="Say hello to {{team}} for me."
    )
    ok(
        await mutate(client, write_key, REMOVE_EMAIL_STEP, "removeEmailStep", {"id": removed}),
        "step",
    )
    await add_linkedin_step(
        client, write_key, template_id, 1, 0, "MESSAGE", "Hey {{nickname}}, let us connect."
    )
    instance_id = await instance_in(client, write_key, engine, template_id, "active")

    needed = {"email": "ada@example.com", "company": "Acme", "role": "CTO"}
    for missing in ("company", "role"):
        result = await _enroll_raw(client, write_key, instance_id, "c", _without(needed, missing))
        error = assert_refused(
            result, "enrollment", "VARIABLE_MISSING", ["input", "metadata", missing]
        )
        assert f"{{{{{missing}}}}}" in error["message"], error
    both = await _enroll_raw(client, write_key, instance_id, "c", {"email": "ada@example.com"})
    error = assert_refused(both, "enrollment", "VARIABLE_MISSING", ["input", "metadata", "company"])
    assert "{{company}}" in error["message"], error
    assert "{{role}}" in error["message"], error
    assert (await instance_row(engine, instance_id))["total_enrolled"] == 0

    enrollment = await enroll(client, write_key, instance_id, "c", needed)
    assert enrollment["metadata"] == needed


@pytest.mark.parametrize(
    ("template_type", "channel", "suppressed", "given", "field"),
    [
        ("EMAIL", "EMAIL", "Ada.Lovelace@Example.com", " ada.lovelace@EXAMPLE.COM ", "email"),
        (
            "LINKEDIN",
            "LINKEDIN",
            "https://www.linkedin.com/in/ada-lovelace/",
            "http://linkedin.com/in/Ada-Lovelace?trk=profile",
            "linkedin_url",
        ),
        (
            "MULTI_CHANNEL",
            "LINKEDIN",
            "linkedin.com/in/ada-lovelace",
            "https://www.linkedin.com/in/ada-lovelace",
            "linkedin_url",
        ),
    ],
    ids=["email", "linkedin", "multi-channel-linkedin"],
)
async def test_enroll_contact_refuses_a_suppressed_address_in_any_spelling(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    admin_key: str,
    template_type: str,
    channel: str,
    suppressed: str,
    given: str,
    field: str,
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, template_type)
    await suppress(client, admin_key, suppressed, channel)
    before = await _state(engine, instance_id)
    metadata = person("c") | {field: given}

    result = await _enroll_raw(client, write_key, instance_id, "c", metadata)

    assert_refused(result, "enrollment", "SUPPRESSED", ["input", "metadata", field])
    assert await _state(engine, instance_id) == before


async def test_a_suppressed_address_of_a_channel_the_template_does_not_use_does_not_matter(
    app: Starlette, client: httpx.AsyncClient, write_key: str, admin_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, "EMAIL")
    metadata = person("c")
    await suppress(client, admin_key, metadata["linkedin_url"], "LINKEDIN")
    enrollment = await enroll(client, write_key, instance_id, "c", metadata)
    assert enrollment["status"] == "ACTIVE"


async def test_bulk_enroll_skips_each_reason_with_its_index_and_enrolls_the_rest(
    app: Starlette, client: httpx.AsyncClient, write_key: str, admin_key: str
) -> None:
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, "MULTI_CHANNEL")
    member = await enroll(client, write_key, instance_id, "member")
    blocked = person("blocked")
    await suppress(client, admin_key, blocked["email"])
    request = [
        {"contactId": "ok-0", "metadata": person("ok-0")},
        {"contactId": "member", "metadata": person("member", first_name="New")},
        {"contactId": "no-email", "metadata": _without(person("no-email"), "email")},
        {"contactId": "bad-url", "metadata": person("bad-url", linkedin_url="linkedin.com/ada")},
        {"contactId": "ok-4", "metadata": person("ok-4", company="Acme")},
        {"contactId": "no-name", "metadata": _without(person("no-name"), "first_name")},
        {"contactId": "blocked", "metadata": blocked},
        {"contactId": "ok-0", "metadata": person("ok-0", first_name="Again")},
        {"contactId": "ok-8", "metadata": person("ok-8")},
    ]
    expected_skips = [
        (1, "member", "ALREADY_ENROLLED"),
        (2, "no-email", "ADDRESS_MISSING"),
        (3, "bad-url", "ADDRESS_INVALID"),
        (5, "no-name", "VARIABLE_MISSING"),
        (6, "blocked", "SUPPRESSED"),
        (7, "ok-0", "DUPLICATE_IN_REQUEST"),
    ]
    enrolled = {0, 4, 8}

    result = await bulk_enroll(client, write_key, instance_id, request)

    assert result["errors"] == [], result
    skipped = result["skipped"]
    assert [(s["index"], s["contactId"], s["reason"]) for s in skipped] == expected_skips
    assert all(s["message"] for s in skipped), skipped
    by_reason = {s["reason"]: s["message"] for s in skipped}
    assert "email" in by_reason["ADDRESS_MISSING"]
    assert "linkedin_url" in by_reason["ADDRESS_INVALID"]
    assert "first_name" in by_reason["VARIABLE_MISSING"]
    assert "email" in by_reason["SUPPRESSED"]
    assert result["skippedCount"] == len(expected_skips)
    assert result["enrolledCount"] == len(enrolled)
    sent = {request[i]["contactId"]: request[i]["metadata"] for i in enrolled}
    assert {e["contactId"]: e["metadata"] for e in result["enrollments"]} == sent

    rows = {r["contact_id"]: r for r in await enrollment_rows(engine, instance_id)}
    assert {k: r["metadata"] for k, r in rows.items()} == sent | {"member": person("member")}
    assert str(rows["member"]["id"]) == member["id"]
    assert (await instance_row(engine, instance_id))["total_enrolled"] == len(enrolled) + 1


async def test_bulk_enroll_malformed_input_still_refuses_the_whole_request(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """A contact that would only be skipped does not hide a malformed one, nor let the
    others through."""
    engine = engine_of(app)
    instance_id = await _instance(client, write_key, engine, "EMAIL")
    request = [
        {"contactId": "ok", "metadata": person("ok")},
        {"contactId": "no-email", "metadata": _without(person("no-email"), "email")},
        {"contactId": "bad", "metadata": ["not", "an", "object"]},
    ]
    result = await bulk_enroll(client, write_key, instance_id, request)
    assert [(e["code"], e["field"]) for e in result["errors"]] == [
        ("INVALID", ["contacts", "2", "metadata"])
    ]
    assert (result["enrolledCount"], result["skippedCount"]) == (0, 0)
    assert (result["enrollments"], result["skipped"]) == ([], [])
    assert await _state(engine, instance_id) == (0, [])
