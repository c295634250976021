"""The first hour with the provider webhooks (issue 24): an endpoint whose secret is not
configured says so instead of "missing or wrong secret", and ``campaign-api dev`` (what
``make run`` runs) makes up the secrets, keeps them for the next start and prints them, so
each provider's webhook accepts a request as printed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli import dev_secrets
from app.settings import Settings
from app.web.asgi import create_app
from tests.webhooks.helpers import (
    LEMLIST_SECRET,
    POSTMARK_PASSWORD,
    POSTMARK_USER,
    basic_auth,
    load,
)
from tests.webhooks.test_http import assert_error, nothing_stored

CLI = Path(sys.executable).parent / "campaign-api"

ATTEMPTS: dict[str, dict[str, Any]] = {
    "lemlist": {"params": {"secret": LEMLIST_SECRET}},
    "postmark": {"headers": basic_auth(POSTMARK_USER, POSTMARK_PASSWORD)},
    "phantombuster": {"params": {"secret": "anything"}},
}
PAYLOADS = {
    "lemlist": load("lemlist", "emailsOpened"),
    "postmark": load("postmark", "Open"),
    "phantombuster": load("phantombuster", "message_sender_object"),
}


@pytest.mark.parametrize("provider", sorted(ATTEMPTS))
async def test_an_unconfigured_endpoint_says_no_secret_is_configured(
    bare_client: httpx.AsyncClient, engine: AsyncEngine, provider: str
) -> None:
    for attempt in ({}, ATTEMPTS[provider]):
        response = await bare_client.post(
            f"/webhooks/{provider}", json=PAYLOADS[provider], **attempt
        )
        body = assert_error(response, 401)
        assert body["error"] == "NOT_CONFIGURED"
        assert body["message"].startswith(f"no secret configured for {provider}: set CAMPAIGN_")
    await nothing_stored(engine)


@pytest.fixture
async def strict_client(settings: Settings, clean_db: None) -> AsyncIterator[httpx.AsyncClient]:
    """No webhook secret, and two failed authentications per minute lock an address out;
    only Postmark's user is set (half a configuration is none)."""
    strict = settings.model_copy(
        update={"auth_failures_per_minute": 2, "postmark_webhook_user": "someone"}
    )
    application = create_app(strict)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_an_unconfigured_endpoint_locks_nobody_out(strict_client: httpx.AsyncClient) -> None:
    for _ in range(5):
        for provider in sorted(ATTEMPTS):
            response = await strict_client.post(
                f"/webhooks/{provider}", json=PAYLOADS[provider], **ATTEMPTS[provider]
            )
            assert response.json()["error"] == "NOT_CONFIGURED", response.text
    # The address has no failure on record: a wrong key is still answered 401, not 429.
    wrong = await strict_client.post(
        "/webhooks/events",
        json={"enrollment_id": "x", "event_type": "opened"},
        headers={"authorization": "Bearer wrong"},
    )
    assert assert_error(wrong, 401)["error"] == "UNAUTHENTICATED"


# ----------------------------------------------------------------------------- dev secrets


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No webhook secret in the environment; what ``export`` sets is undone afterwards."""
    for variable in dev_secrets.VARIABLES:
        monkeypatch.setenv(variable, "recorded, so that the undo removes what export sets")
        monkeypatch.delenv(variable)


def test_dev_makes_up_the_missing_secrets_once_and_keeps_them(
    tmp_path: Path, bare_environment: None
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    first = dev_secrets.development_webhook_secrets(settings)
    assert sorted(first.generated) == sorted(dev_secrets.VARIABLES)
    assert all(len(v) >= 8 for k, v in first.generated.items() if not k.endswith("_USER"))
    assert len(set(first.generated.values())) == len(first.generated)  # no secret shared
    kept = tmp_path / "data" / dev_secrets.FILE_NAME
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    again = dev_secrets.development_webhook_secrets(settings)
    assert again.generated == first.generated


def test_dev_leaves_a_configured_secret_alone(tmp_path: Path, bare_environment: None) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=None, lemlist_webhook_secret=SecretStr("mine-1234")
    )
    found = dev_secrets.development_webhook_secrets(settings)
    assert "CAMPAIGN_LEMLIST_WEBHOOK_SECRET" not in found.generated
    assert found.configured == ("CAMPAIGN_LEMLIST_WEBHOOK_SECRET",)
    assert "mine-1234" not in (tmp_path / dev_secrets.FILE_NAME).read_text()
    assert "mine-1234" not in dev_secrets.describe(found, "http://127.0.0.1:8000")


def test_exported_secrets_configure_the_settings(tmp_path: Path, bare_environment: None) -> None:
    found = dev_secrets.development_webhook_secrets(Settings(data_dir=tmp_path, database_url=None))
    dev_secrets.export(found)
    settings = Settings(database_url=None)
    assert settings.lemlist_webhook_secret is not None
    assert (
        settings.lemlist_webhook_secret.get_secret_value()
        == found.generated["CAMPAIGN_LEMLIST_WEBHOOK_SECRET"]
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def empty_database(new_database: Callable[[str], tuple[str, str]]) -> str:
    return new_database("campaign_devhooks")[1]


async def _printed(stream: asyncio.StreamReader, until: str) -> str:
    """What ``dev`` printed, up to and including the line that starts with ``until``."""
    lines = []
    while True:
        line = (await asyncio.wait_for(stream.readline(), 120)).decode()
        if not line:
            raise AssertionError("dev stopped before printing: " + "".join(lines)[-2000:])
        lines.append(line)
        if line.strip().startswith(until):
            return "".join(lines)


@pytest.mark.slow
async def test_make_run_prints_secrets_each_provider_webhook_accepts(
    empty_database: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_")}
    port = _free_port()
    env |= {
        "DATABASE_URL": empty_database,
        "CAMPAIGN_DATA_DIR": str(tmp_path / "data"),
        "CAMPAIGN_PORT": str(port),
        "CAMPAIGN_LOG_LEVEL": "WARNING",
    }
    dev = await asyncio.create_subprocess_exec(
        str(CLI), "dev", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert dev.stdout is not None
        printed = await _printed(dev.stdout, "phantombuster:")
        lemlist_url = re.search(r"lemlist:\s+(\S+)", printed)
        postmark = re.search(
            r"postmark:\s+(\S+) with HTTP Basic user (\S+), password (\S+)", printed
        )
        phantom_url = re.search(r"phantombuster:\s+(\S+)", printed)
        assert lemlist_url is not None, printed
        assert postmark is not None, printed
        assert phantom_url is not None, printed
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(240):
                try:
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.25)
            answers = [
                await http.post(lemlist_url[1], json=PAYLOADS["lemlist"]),
                await http.post(
                    postmark[1],
                    json=PAYLOADS["postmark"],
                    headers=basic_auth(postmark[2], postmark[3]),
                ),
                await http.post(phantom_url[1], json=PAYLOADS["phantombuster"]),
            ]
            for answer in answers:
                assert answer.status_code == 200, answer.text
            wrong = await http.post(
                f"{base}/webhooks/lemlist", params={"secret": "guess"}, json=PAYLOADS["lemlist"]
            )
            assert wrong.json()["message"] == "missing or wrong 'secret' query parameter"
    finally:
        dev.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(dev.communicate(), 60)
    assert dev.returncode == 0, stderr.decode()[-2000:]
