"""Every `curl` in the README's "First requests" section works, as written, on the seed: the
commands a newcomer copies are run here (parsed, not shelled out, so no curl is needed)."""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from app.cli.dev_secrets import VARIABLES
from app.cli.seed import seed
from app.domain.enums import Scope
from app.security.api_keys import create_api_key
from app.settings import Settings
from app.web.asgi import create_app
from tests.webhooks.conftest import webhook_settings
from tests.webhooks.helpers import (
    LEMLIST_SECRET,
    PHANTOMBUSTER_SECRET,
    POSTMARK_PASSWORD,
    POSTMARK_USER,
)

README = Path(__file__).resolve().parent.parent / "README.md"
SERVED_AT = "http://127.0.0.1:8000"


@dataclass
class Curl:
    """What one curl command line asks for."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    data: str | None = None
    auth: tuple[str, str] | None = None


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def commands() -> list[str]:
    """The section's shell blocks that call curl, one command each."""
    blocks = re.findall(r"```sh\n(.*?)```", _section("First requests"), re.S)
    return [block.replace("\\\n", " ").strip() for block in blocks if "curl " in block]


def parse(command: str, values: dict[str, str]) -> Curl:
    """The command's URL, headers, body and basic credentials, with ``$NAME`` filled in."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"the README uses ${name}, which the section does not define"
        return values[name]

    words = shlex.split(re.sub(r"\$([A-Z_]+)\b", fill, command))
    assert words[0] == "curl", command
    request = Curl(url="")
    options = iter(words[1:])
    for word in options:
        if word == "-s":
            continue
        if word == "-H":
            name, _, value = next(options).partition(":")
            request.headers[name.strip()] = value.strip()
        elif word == "-d":
            request.data = next(options)
        elif word == "-u":
            user, _, password = next(options).partition(":")
            request.auth = (user, password)
        else:
            assert word.startswith(SERVED_AT), f"unexpected curl argument {word!r}"
            request.url = word
    return request


SECRETS = {
    "LEMLIST_SECRET": LEMLIST_SECRET,
    "POSTMARK_USER": POSTMARK_USER,
    "POSTMARK_PASSWORD": POSTMARK_PASSWORD,
    "PHANTOMBUSTER_SECRET": PHANTOMBUSTER_SECRET,
}


def test_the_section_shows_a_query_a_mutation_with_variables() -> None:
    bodies = [parse(c, {"KEY": "k"}).data or "" for c in commands() if "/graphql" in c]
    assert any('"query": "{' in body for body in bodies)
    assert any("mutation" in body and '"variables"' in body for body in bodies)


async def test_every_graphql_curl_answers_without_an_error(
    seeded: Starlette, direct_client: httpx.AsyncClient, admin_key: str
) -> None:
    graphql = [parse(c, {"KEY": admin_key}) for c in commands() if "/graphql" in c]
    assert graphql
    for request in graphql:
        response = await direct_client.post(
            request.url.removeprefix(SERVED_AT),
            content=(request.data or "").encode(),
            headers=request.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        for answer in body["data"].values():
            assert not (isinstance(answer, dict) and answer.get("errors")), answer


@pytest.mark.parametrize("command", commands())
def test_every_command_names_only_what_the_section_defines(command: str) -> None:
    defined = set(re.findall(r"^([A-Z_]+)=", _section("First requests"), re.M))
    used = set(re.findall(r"\$([A-Z_]+)\b", command))
    assert used <= defined, used - defined


def test_the_section_reads_the_secrets_make_run_keeps() -> None:
    """The names the section looks up are the ones ``campaign-api dev`` writes."""
    looked_up = set(re.findall(r"\$\(secret (CAMPAIGN_[A-Z_]+)\)", _section("First requests")))
    assert looked_up == set(VARIABLES)


@pytest.fixture
async def webhook_app(settings: Settings, clean_db: None) -> AsyncIterator[Starlette]:
    """The service with the webhook secrets set, on the seed, as under ``make run``."""
    application = create_app(webhook_settings(settings))
    async with application.router.lifespan_context(application):
        async with application.state.sessionmaker.begin() as session:
            assert await seed(session) is True
        yield application


async def test_every_webhook_curl_stores_its_one_event(webhook_app: Starlette) -> None:
    async with webhook_app.state.sessionmaker.begin() as session:
        key = await create_api_key(session, "readme", frozenset({Scope.ADMIN}))
    webhooks = [parse(c, {"KEY": key, **SECRETS}) for c in commands() if "/webhooks/" in c]
    paths = {request.url.removeprefix(SERVED_AT).split("?")[0] for request in webhooks}
    assert paths == {
        "/webhooks/events",
        "/webhooks/lemlist",
        "/webhooks/postmark",
        "/webhooks/phantombuster",
    }
    transport = httpx.ASGITransport(app=webhook_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for request in webhooks:
            sent = {
                "content": (request.data or "").encode(),
                "headers": request.headers,
                "auth": request.auth,
            }
            url = request.url.removeprefix(SERVED_AT)
            first = await client.post(url, **sent)
            assert first.status_code == 200, (url, first.text)
            assert first.json() == {"accepted": 1, "duplicates": 0, "orphaned": 0, "ignored": 0}
            again = await client.post(url, **sent)
            assert again.json() == {"accepted": 0, "duplicates": 1, "orphaned": 0, "ignored": 0}
