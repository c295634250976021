"""What an instance's providerConfig must hold (issue 23, domain.md "Sending").

startInstance refuses, with PROVIDER_CONFIG_INCOMPLETE on ``id`` and nothing written, an
instance whose config lacks what the providers of its channels need: Postmark (the default for
email) a ``from_email``; PhantomBuster (the default for LinkedIn) an agent in
``phantombuster_agents`` for each LinkedIn action the template's active steps take; lemlist a
``lemlist_campaign_id``. createInstance refuses a malformed sending key at once (INVALID on
``providerConfig``), and stores a well-formed one as sent.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from app.domain.limits import DAILY_LIMIT_MAX
from tests.lifecycle.helpers import (
    CREATE_INSTANCE,
    REMOVE_LINKEDIN_STEP,
    add_email_step,
    add_linkedin_step,
    assert_refused,
    bulk_enroll,
    contacts,
    count,
    create_instance,
    create_template,
    engine_of,
    instance_row,
    mutate,
    ok,
    run_transition,
    snapshot,
)

# The LinkedIn steps of the templates below: (action, message).
LINKEDIN_STEPS = [("PROFILE_VISIT", None), ("CONNECTION_REQUEST", None)]
EMAIL_CONFIG = {"from_email": "team@example.com"}
LINKEDIN_AGENTS = {"profile_visit": "agent-1", "connection_request": "agent-2"}


async def _template(client: httpx.AsyncClient, key: str, template_type: str) -> str:
    """A template of ``template_type``: an email step, and LINKEDIN_STEPS, on the channels its
    type sends on."""
    template_id = await create_template(client, key, template_type)
    if template_type in ("EMAIL", "MULTI_CHANNEL"):
        await add_email_step(client, key, template_id, 1, 0)
    if template_type in ("LINKEDIN", "MULTI_CHANNEL"):
        for number, (action, message) in enumerate(LINKEDIN_STEPS, start=1):
            await add_linkedin_step(client, key, template_id, number, 1, action, message)
    return template_id


async def _draft(
    client: httpx.AsyncClient, key: str, template_id: str, config: dict[str, Any]
) -> str:
    """A draft instance with ``config`` and two enrolled contacts (which a start would wake)."""
    instance_id: str = (await create_instance(client, key, template_id, providerConfig=config))[
        "id"
    ]
    result = await bulk_enroll(client, key, instance_id, contacts(range(2)))
    assert result["enrolledCount"] == 2, result
    return instance_id


# (template type, providerConfig, the settings the refusal names, the keys that complete it)
INCOMPLETE = [
    ("EMAIL", {}, ["from_email"], EMAIL_CONFIG),
    ("EMAIL", {"email_provider": "postmark", "from_name": "Ada"}, ["from_email"], EMAIL_CONFIG),
    (
        "EMAIL",
        {"email_provider": "lemlist", "from_email": "team@example.com"},
        ["lemlist_campaign_id"],
        {"lemlist_campaign_id": "cam_123"},
    ),
    (
        "LINKEDIN",
        {},
        ["phantombuster_agents.profile_visit", "phantombuster_agents.connection_request"],
        {"phantombuster_agents": LINKEDIN_AGENTS},
    ),
    (
        "LINKEDIN",
        {"phantombuster_agents": {"profile_visit": "agent-1", "message": "agent-3"}},
        ["phantombuster_agents.connection_request"],
        {"phantombuster_agents": LINKEDIN_AGENTS},
    ),
    (
        "LINKEDIN",
        {"linkedin_provider": "lemlist"},
        ["lemlist_campaign_id"],
        {"lemlist_campaign_id": "cam_123"},
    ),
    (
        "MULTI_CHANNEL",
        EMAIL_CONFIG,
        ["phantombuster_agents.profile_visit", "phantombuster_agents.connection_request"],
        {"phantombuster_agents": LINKEDIN_AGENTS},
    ),
    (
        "MULTI_CHANNEL",
        {"phantombuster_agents": LINKEDIN_AGENTS},
        ["from_email"],
        EMAIL_CONFIG,
    ),
    (
        "MULTI_CHANNEL",
        {},
        [
            "from_email",
            "phantombuster_agents.profile_visit",
            "phantombuster_agents.connection_request",
        ],
        EMAIL_CONFIG | {"phantombuster_agents": LINKEDIN_AGENTS},
    ),
]
INCOMPLETE_IDS = [
    "email-postmark-by-default",
    "email-postmark-named",
    "email-lemlist",
    "linkedin-phantombuster-no-agents",
    "linkedin-phantombuster-one-agent-missing",
    "linkedin-lemlist",
    "multi-no-agents",
    "multi-no-sender",
    "multi-nothing",
]
ALL_SETTINGS = {
    "from_email",
    "lemlist_campaign_id",
    *(f"phantombuster_agents.{a}" for a in ("profile_visit", "connection_request", "message")),
    "phantombuster_agents.voice_message",
}


@pytest.mark.parametrize(
    ("template_type", "config", "named", "completion"), INCOMPLETE, ids=INCOMPLETE_IDS
)
async def test_start_refuses_a_config_its_providers_cannot_send_with(
    app: Starlette,
    client: httpx.AsyncClient,
    write_key: str,
    template_type: str,
    config: dict[str, Any],
    named: list[str],
    completion: dict[str, Any],
) -> None:
    engine = engine_of(app)
    template_id = await _template(client, write_key, template_type)
    instance_id = await _draft(client, write_key, template_id, config)
    before = await snapshot(engine, instance_id)

    result = await run_transition(client, write_key, instance_id, "start")

    error = assert_refused(result, "instance", "PROVIDER_CONFIG_INCOMPLETE", ["id"])
    for setting in named:
        assert setting in error["message"], (setting, error)
    for setting in ALL_SETTINGS - set(named):
        assert setting not in error["message"], (setting, error)
    assert await snapshot(engine, instance_id) == before

    # The same template, with the missing settings added, starts: they were all it lacked.
    complete = await _draft(client, write_key, template_id, config | completion)
    started = ok(await run_transition(client, write_key, complete, "start"), "instance")
    assert started["status"] == "ACTIVE"


async def test_only_the_actions_of_active_steps_need_an_agent(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """A LINKEDIN template with a message and a voice message, and a connection request that
    was removed: agents for the two active actions are enough."""
    engine = engine_of(app)
    template_id = await create_template(client, write_key, "LINKEDIN")
    await add_linkedin_step(client, write_key, template_id, 1, 0, "MESSAGE", "Hi {{first_name}}!")
    removed = await add_linkedin_step(client, write_key, template_id, 2, 1, "CONNECTION_REQUEST")
    await add_linkedin_step(client, write_key, template_id, 3, 1, "VOICE_MESSAGE", "A script.")
    ok(
        await mutate(
            client, write_key, REMOVE_LINKEDIN_STEP, "removeLinkedInStep", {"id": removed}
        ),
        "step",
    )
    agents = {"message": "agent-m", "voice_message": "agent-v"}

    short = await _draft(client, write_key, template_id, {"phantombuster_agents": agents})
    started = ok(await run_transition(client, write_key, short, "start"), "instance")
    assert started["status"] == "ACTIVE"

    without_voice = {"phantombuster_agents": {"message": "agent-m"}}
    refused = await _draft(client, write_key, template_id, without_voice)
    result = await run_transition(client, write_key, refused, "start")
    error = assert_refused(result, "instance", "PROVIDER_CONFIG_INCOMPLETE", ["id"])
    assert "phantombuster_agents.voice_message" in error["message"], error
    assert "connection_request" not in error["message"], error
    assert (await instance_row(engine, refused))["status"] == "draft"


async def test_lemlist_on_both_channels_needs_only_its_campaign(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await _template(client, write_key, "MULTI_CHANNEL")
    config = {
        "email_provider": "lemlist",
        "linkedin_provider": "lemlist",
        "lemlist_campaign_id": "cam_123",
    }
    instance_id = await _draft(client, write_key, template_id, config)
    started = ok(await run_transition(client, write_key, instance_id, "start"), "instance")
    assert started["status"] == "ACTIVE"
    assert started["providerConfig"] == config


async def test_a_stored_config_that_no_longer_parses_refuses_the_start_in_words(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    """An instance stored before its sending keys were checked (simulated with SQL) may hold
    a malformed one: its start is refused with a user error, not an internal one."""
    engine = engine_of(app)
    template_id = await _template(client, write_key, "EMAIL")
    instance_id = await _draft(client, write_key, template_id, EMAIL_CONFIG)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE campaign_instances SET provider_config = provider_config"
                ' || \'{"daily_limit": "fifty"}\' WHERE id = CAST(:id AS uuid)'
            ),
            {"id": instance_id},
        )
    before = await snapshot(engine, instance_id)

    result = await run_transition(client, write_key, instance_id, "start")

    error = assert_refused(result, "instance", "PROVIDER_CONFIG_INCOMPLETE", ["id"])
    assert "daily_limit" in error["message"], error
    assert await snapshot(engine, instance_id) == before


# --- createInstance: the shape of each sending key ----------------------------------------------

MALFORMED = {
    "timezone-unknown": {"timezone": "Mars/Olympus"},
    "timezone-a-region": {"timezone": "Europe"},
    "timezone-too-long": {"timezone": "x" * 300},
    "timezone-empty": {"timezone": ""},
    "timezone-a-number": {"timezone": 2},
    "send-days-empty": {"send_days": []},
    "send-days-unknown-day": {"send_days": ["mon", "funday"]},
    "send-days-a-string": {"send_days": "mon"},
    "send-from-not-hh-mm": {"send_from": "9:00"},
    "send-from-24h": {"send_from": "24:00"},
    "send-until-a-number": {"send_until": 17},
    "send-until-before-send-from": {"send_from": "17:00", "send_until": "09:00"},
    "send-until-equal-to-send-from": {"send_from": "09:00", "send_until": "09:00"},
    "daily-limit-zero": {"daily_limit": 0},
    "daily-limit-negative": {"daily_limit": -5},
    "daily-limit-over-the-maximum": {"daily_limit": DAILY_LIMIT_MAX + 1},
    "daily-limit-a-string": {"daily_limit": "50"},
    "daily-limit-a-fraction": {"daily_limit": 2.5},
    "daily-limit-a-boolean": {"daily_limit": True},
    "from-email-not-an-address": {"from_email": "team-at-example.com"},
    "from-email-blank": {"from_email": "  "},
    "from-email-a-number": {"from_email": 7},
    "lemlist-campaign-blank": {"lemlist_campaign_id": ""},
    "agents-unknown-action": {"phantombuster_agents": {"dance": "agent-1"}},
    "agents-blank-id": {"phantombuster_agents": {"message": " "}},
    "agents-a-list": {"phantombuster_agents": ["agent-1"]},
}


@pytest.mark.parametrize("config", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_create_instance_refuses_a_malformed_sending_key(
    app: Starlette, client: httpx.AsyncClient, write_key: str, config: dict[str, Any]
) -> None:
    engine = engine_of(app)
    template_id = await _template(client, write_key, "MULTI_CHANNEL")
    before = await count(engine, "campaign_instances")
    data = {"templateId": template_id, "name": "N", "providerConfig": EMAIL_CONFIG | config}
    result = await mutate(client, write_key, CREATE_INSTANCE, "createInstance", {"input": data})
    error = assert_refused(result, "instance", "INVALID", ["input", "providerConfig"])
    named = "send_until" if "send_until" in config else next(iter(config))
    assert named in error["message"], error
    assert await count(engine, "campaign_instances") == before


async def test_create_instance_stores_well_formed_sending_keys_as_sent(
    app: Starlette, client: httpx.AsyncClient, write_key: str
) -> None:
    template_id = await _template(client, write_key, "MULTI_CHANNEL")
    config = {
        "email_provider": "postmark",
        "linkedin_provider": "phantombuster",
        "from_email": "team@example.com",
        "from_name": "The team",
        "message_stream": "broadcast",
        "phantombuster_agents": LINKEDIN_AGENTS | {"message": 42},
        "timezone": "Europe/Paris",
        "send_days": ["mon", "TUE", "fri"],
        "send_from": "09:00",
        "send_until": "17:30",
        "daily_limit": DAILY_LIMIT_MAX,
        "crm_sync": {"enabled": True},  # the frontend's own setting, kept
    }
    instance = await create_instance(client, write_key, template_id, providerConfig=config)
    assert instance["providerConfig"] == config
    assert (await instance_row(engine_of(app), instance["id"]))["provider_config"] == config
