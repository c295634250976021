"""createInstance: a DRAFT instance of an active template with its first audit row; every
refusal leaves no instance and no transition row behind."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.lifecycle.helpers import (
    CREATE_INSTANCE,
    archive_template,
    assert_refused,
    count,
    create_template,
    engine_of,
    instance_row,
    mutate,
    ok,
    random_id,
    transition_rows,
)

WRITER = "test-writer"  # the write_key fixture's key name


async def _create(
    client: httpx.AsyncClient, key: str, data: dict[str, Any], omit_config: bool = False
) -> dict[str, Any]:
    """createInstance with ``data``; an empty providerConfig is sent unless ``data`` has one or
    ``omit_config``, so each test exercises its own rule only."""
    if not omit_config:
        data = {"providerConfig": {}} | data
    return await mutate(client, key, CREATE_INSTANCE, "createInstance", {"input": data})


async def _assert_nothing_stored(app: Starlette) -> None:
    engine = engine_of(app)
    assert await count(engine, "campaign_instances") == 0
    assert await count(engine, "instance_transitions") == 0


async def test_create_instance_starts_as_draft_with_one_transition(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 0)])
    config = {"email_provider": "postmark"}
    result = await _create(
        client,
        write_key,
        {"templateId": template_id, "name": "  Q3 push  ", "providerConfig": config},
    )
    instance = ok(result, "instance")
    assert instance["status"] == "DRAFT"
    assert instance["name"] == "Q3 push"
    assert instance["template"]["id"] == template_id
    assert instance["providerConfig"] == config
    assert instance["metrics"]["enrolled"] == 0
    for field in ("startedAt", "pausedAt", "completedAt", "failureReason"):
        assert instance[field] is None, field
    assert len(instance["transitions"]) == 1
    only = instance["transitions"][0]
    assert (only["fromStatus"], only["toStatus"], only["actor"], only["reason"]) == (
        None,
        "DRAFT",
        WRITER,
        None,
    )

    engine = engine_of(app)
    row = await instance_row(engine, instance["id"])
    assert row["status"] == "draft"
    assert str(row["template_id"]) == template_id
    assert row["name"] == "Q3 push"
    assert row["provider_config"] == config
    assert row["total_enrolled"] == 0
    assert (row["started_at"], row["paused_at"], row["completed_at"]) == (None, None, None)
    assert row["failure_reason"] is None
    log = await transition_rows(engine, instance["id"])
    assert [(t["from_status"], t["to_status"], t["actor"], t["reason"]) for t in log] == [
        (None, "draft", WRITER, None)
    ]
    assert await count(engine, "campaign_instances") == 1


async def test_provider_config_may_be_omitted(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """The contract's providerConfig is optional (`providerConfig: JSON`, no `!`)."""
    template_id = await create_template(client, write_key, "EMAIL")
    result = await _create(
        client, write_key, {"templateId": template_id, "name": "N"}, omit_config=True
    )
    instance = ok(result, "instance")
    assert instance["status"] == "DRAFT"
    assert (await instance_row(engine_of(app), instance["id"]))["provider_config"] == {}


async def test_explicit_null_provider_config_is_stored_as_empty_object(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await create_template(client, write_key, "EMAIL")
    result = await _create(
        client, write_key, {"templateId": template_id, "name": "N", "providerConfig": None}
    )
    instance = ok(result, "instance")
    assert (await instance_row(engine_of(app), instance["id"]))["provider_config"] == {}


async def test_name_of_255_characters_is_accepted(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await create_template(client, write_key, "EMAIL")
    name = "n" * 255
    instance = ok(
        await _create(client, write_key, {"templateId": template_id, "name": name}), "instance"
    )
    assert (await instance_row(engine_of(app), instance["id"]))["name"] == name


@pytest.mark.parametrize(
    ("template_type", "config"),
    [
        ("EMAIL", {"email_provider": "lemlist"}),
        ("EMAIL", {"email_provider": "postmark"}),
        ("LINKEDIN", {"linkedin_provider": "phantombuster"}),
        ("LINKEDIN", {"linkedin_provider": "lemlist"}),
        ("MULTI_CHANNEL", {"email_provider": "postmark", "linkedin_provider": "phantombuster"}),
        ("EMAIL", {}),
    ],
)
async def test_valid_provider_config_is_stored(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template_type: str,
    config: dict[str, Any],
) -> None:
    template_id = await create_template(client, write_key, template_type)
    result = await _create(
        client, write_key, {"templateId": template_id, "name": "P", "providerConfig": config}
    )
    instance = ok(result, "instance")
    assert instance["providerConfig"] == config
    assert (await instance_row(engine_of(app), instance["id"]))["provider_config"] == config


async def test_unknown_template_is_not_found(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    missing = random_id()
    result = await _create(client, write_key, {"templateId": missing, "name": "X"})
    error = assert_refused(result, "instance", "NOT_FOUND", ["input", "templateId"])
    assert missing in error["message"]
    await _assert_nothing_stored(app)


async def test_malformed_template_id_is_invalid(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    result = await _create(client, write_key, {"templateId": "not-a-uuid", "name": "X"})
    assert_refused(result, "instance", "INVALID", ["input", "templateId"])
    await _assert_nothing_stored(app)


async def test_archived_template_is_inactive(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await create_template(client, write_key, "EMAIL", email=[(1, 0)])
    await archive_template(client, write_key, template_id)
    result = await _create(client, write_key, {"templateId": template_id, "name": "X"})
    assert_refused(result, "instance", "TEMPLATE_INACTIVE", ["input", "templateId"])
    await _assert_nothing_stored(app)


@pytest.mark.parametrize("name", ["", "   ", "x" * 256, " " + "y" * 256 + " "])
async def test_bad_name_is_invalid(
    app: Starlette, client: httpx.AsyncClient, write_key: str, name: str
) -> None:
    template_id = await create_template(client, write_key, "EMAIL")
    result = await _create(client, write_key, {"templateId": template_id, "name": name})
    assert_refused(result, "instance", "INVALID", ["input", "name"])
    await _assert_nothing_stored(app)


@pytest.mark.parametrize(
    ("template_type", "config"),
    [
        ("EMAIL", {"email_provider": "sendgrid"}),
        ("EMAIL", {"email_provider": "phantombuster"}),
        ("LINKEDIN", {"linkedin_provider": "postmark"}),
        ("EMAIL", {"linkedin_provider": "phantombuster"}),
        ("LINKEDIN", {"email_provider": "postmark"}),
        ("MULTI_CHANNEL", {"email_provider": "postmark", "linkedin_provider": "waalaxy"}),
    ],
)
async def test_bad_provider_config_is_invalid(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template_type: str,
    config: dict[str, Any],
) -> None:
    template_id = await create_template(client, write_key, template_type)
    result = await _create(
        client, write_key, {"templateId": template_id, "name": "P", "providerConfig": config}
    )
    assert_refused(result, "instance", "INVALID", ["input", "providerConfig"])
    await _assert_nothing_stored(app)


@pytest.mark.parametrize("config", [["email_provider", "postmark"], "postmark", 5, True])
async def test_non_object_provider_config_is_invalid(
    app: Starlette, client: httpx.AsyncClient, write_key: str, config: Any
) -> None:
    template_id = await create_template(client, write_key, "EMAIL")
    result = await _create(
        client, write_key, {"templateId": template_id, "name": "P", "providerConfig": config}
    )
    assert_refused(result, "instance", "INVALID", ["input", "providerConfig"])
    await _assert_nothing_stored(app)


async def test_several_problems_are_reported_together_and_nothing_is_stored(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    result = await _create(
        client, write_key, {"templateId": "nope", "name": " ", "providerConfig": [1]}
    )
    assert result["instance"] is None
    fields = sorted(tuple(e["field"]) for e in result["errors"])
    assert fields == [("input", "name"), ("input", "providerConfig"), ("input", "templateId")]
    assert {e["code"] for e in result["errors"]} == {"INVALID"}
    await _assert_nothing_stored(app)
