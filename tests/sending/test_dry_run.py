"""A provider without credentials (domain.md, "Sending": failures; app/providers/clients.py):
in development the dry run stands in, so a campaign runs offline and says so; in production
it is a configuration error, and the touches wait, visibly, without being dropped or faked."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.domain.enums import Scope
from app.observability.logs import configure_logging
from app.observability.sql_observer import recording
from app.security.api_keys import create_api_key
from app.settings import Environment, Settings
from app.web.asgi import create_app
from testkit.campaigns import build_campaign, email_only
from testkit.fake_providers import FakeProviders
from tests.sending.conftest import eventually, rows, running_sender, scalar, sending_settings
from tests.sending.reading import (
    dispatches,
    enrollments_reach,
    events_of,
    notify_senders,
    sending_of,
)

WITHOUT_CREDENTIALS: dict[str, Any] = {
    "postmark_server_token": None,
    "phantombuster_api_key": None,
    "lemlist_api_key": None,
}
CONTACTS = 3


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def test_development_without_credentials_records_dry_runs_and_sends_nothing(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    offline = sending_settings(
        settings,
        providers.base_url,
        **WITHOUT_CREDENTIALS,
    )
    assert not offline.is_production
    campaign = await build_campaign(app_sessionmaker, CONTACTS)  # e-mail and LinkedIn steps
    configure_logging(settings.model_copy(update={"environment": Environment.PRODUCTION}))
    capsys.readouterr()

    async with running_sender(offline):
        await eventually(enrollments_reach(engine, campaign.instance_id, "completed", CONTACTS))

    assert providers.received == [], "nothing left the machine"
    sent = await dispatches(engine, campaign.instance_id)
    assert {(d.status, d.dry_run) for d in sent} == {("sent", True)}
    lines = [e for e in json_lines(capsys.readouterr().err) if e.get("event") == "dry_run_send"]
    assert sorted(line["dispatch_id"] for line in lines) == sorted(d.id for d in sent)
    numbers = dict(
        await rows(
            engine,
            "SELECT id::text, metadata->>'first_name' FROM enrollments"
            " WHERE instance_id = CAST(:i AS uuid)",
            i=campaign.instance_id,
        )
    )
    for line in lines:
        if line["channel"] == "email":
            expected = f"Step {line['step_number']} for {numbers[line['enrollment_id']]}"
            assert line["subject"] == expected
    for enrollment_id in campaign.enrollment_ids:
        events = await events_of(engine, enrollment_id)
        assert events, enrollment_id
        assert all(e.metadata.get("dry_run") is True for e in events)


def plans(statements: list[str]) -> int:
    """How many times the sender read which instances may send (app/services/sending/schedule)."""
    return sum("provider_config" in s and "template_type" in s for s in statements)


async def test_production_without_a_credential_waits_visibly_and_sends_nothing(
    engine: AsyncEngine,
    app_sessionmaker: async_sessionmaker[AsyncSession],
    providers: FakeProviders,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    production = sending_settings(
        settings,
        providers.base_url,
        environment=Environment.PRODUCTION,
        postmark_server_token=None,
    )
    campaign = await build_campaign(app_sessionmaker, CONTACTS, **email_only(1))
    service = create_app(production)  # configures JSON logs, as production runs
    capsys.readouterr()

    async with service.router.lifespan_context(service), running_sender(production) as sender:
        with recording(sender.engine) as statements:
            # Wake the sender a few times: each wake re-reads the plan, and would warn again.
            for _ in range(3):
                seen = plans(statements)
                await notify_senders(engine)

                async def replanned(seen: int = seen) -> bool:
                    return plans(statements) > seen

                await eventually(replanned)
            blocked = REGISTRY.get_sample_value(
                "campaign_send_blocked_instances", {"provider": "postmark"}
            )
            assert blocked == 1

        async with service.state.sessionmaker.begin() as session:
            key = await create_api_key(session, "reader", frozenset({Scope.READ}))
        transport = httpx.ASGITransport(app=service)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            sending = await sending_of(client, key, campaign.instance_id)

    assert any("postmark" in reason for reason in sending["waitingOn"]), sending
    assert sending["dueNow"] == CONTACTS
    assert providers.received == []
    assert await dispatches(engine, campaign.instance_id) == []
    due = await scalar(
        engine,
        "SELECT count(*) FROM enrollments WHERE instance_id = CAST(:i AS uuid)"
        " AND status = 'active' AND next_action_at <= now()",
        i=campaign.instance_id,
    )
    assert due == CONTACTS, "the touches wait, still due"
    warnings = [
        e
        for e in json_lines(capsys.readouterr().err)
        if e.get("event") == "provider_without_credentials"
    ]
    assert len(warnings) == 1, warnings
    assert warnings[0]["provider"] == "postmark"
    assert warnings[0]["level"] == "warning"
