"""The HTTP edge: probes, GraphiQL, and authentication on /graphql."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from app.security.api_keys import revoke_api_key

QUERY = {"query": "{ templates { totalCount } }"}
VENDOR = Path(__file__).resolve().parent.parent / "app" / "web" / "static" / "vendor"


async def test_healthz_answers_without_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_migrated_revision(client: httpx.AsyncClient) -> None:
    from app.db.migrate import head_revision

    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": head_revision()}


async def test_the_index_points_to_graphql_graphiql_and_the_docs_without_a_key(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    index = response.json()
    assert index["graphql"] == index["graphiql"] == "/graphql"
    assert index["docs"]["webhooks"] == "/webhooks/openapi.json"
    for path in (index["health"], index["ready"], index["docs"]["webhooks"]):
        assert (await client.get(path)).status_code == 200, path


async def test_graphiql_page_is_served_with_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "unpkg.com" not in page.text
    asset = await client.get("/static/vendor/graphiql/graphiql.min.js")
    assert asset.status_code == 200
    assert asset.content == (VENDOR / "graphiql" / "graphiql.min.js").read_bytes()
    assert len(asset.content) > 100_000  # the real bundle, not a placeholder


class _PageParts(HTMLParser):
    """What a Content-Security-Policy without 'unsafe-inline' cares about in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline: list[str] = []
        self.nonces: list[str] = []
        self.open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.open = tag
        if "style" in attributes or any(name.startswith("on") for name in attributes):
            self.inline.append(f"<{tag}> attribute")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            if not attributes.get("src"):
                self.inline.append("<script> without src")
            if attributes.get("nonce"):
                self.nonces.append(str(attributes["nonce"]))
        for name in ("src", "href"):
            if tag in ("script", "link") and attributes.get(name):
                self.sources.append(str(attributes[name]))

    def handle_data(self, data: str) -> None:
        if self.open == "script" and data.strip():
            self.inline.append("script text")


async def test_graphiql_has_a_strict_csp_and_nothing_inline(client: httpx.AsyncClient) -> None:
    """No inline script or style and no data: URL, in the page or the stylesheets it loads, so
    the policy holds without 'unsafe-inline'; the browser test sees it render under it."""
    page = await client.get("/graphql", headers={"accept": "text/html"})
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["font-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"

    parts = _PageParts()
    parts.feed(page.text)
    assert parts.inline == []
    assert "data:" not in page.text
    assert policy["style-src"] == f"'self' 'nonce-{parts.nonces[0]}'"
    again = await client.get("/graphql", headers={"accept": "text/html"})
    assert again.headers["content-security-policy"] != page.headers["content-security-policy"]

    fonts = 0
    for source in parts.sources:
        asset = await client.get(source)
        assert asset.status_code == 200, source
        if source.endswith(".css"):
            assert "data:" not in asset.text, source
            for url in re.findall(r"url\(([^)]+)\)", asset.text):
                inlined = await client.get(url)
                assert inlined.status_code == 200, url
                fonts += url.endswith(".woff2")
                if url.endswith(".woff2"):
                    assert inlined.content.startswith(b"wOF2")
                    assert inlined.headers["content-type"] == "font/woff2"
    published = (VENDOR / "graphiql" / "graphiql.min.css").read_text()
    assert fonts == published.count("url(data:font/woff2;") > 0  # each inlined font, a file
    missing = await client.get("/graphiql-assets/nothing.woff2")
    assert missing.status_code == 404


async def test_post_without_a_key_is_401_with_instructions(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=QUERY)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "UNAUTHENTICATED"
    assert body["message"].startswith("no API key sent: ")
    assert "Authorization: Bearer" in body["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_empty_bearer_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=QUERY, headers={"authorization": "Bearer "})
    assert response.status_code == 401
    assert response.json()["message"].startswith("no API key sent: ")


async def test_wrong_key_is_401_not_recognised(client: httpx.AsyncClient, read_key: str) -> None:
    """A key that was sent but does not verify is told apart from no key at all, and every
    such key gets the same words (a guess learns nothing of why)."""
    messages = set()
    for wrong in (f"{read_key}x", "cak_guess", "not-even-a-key"):
        response = await client.post(
            "/graphql", json=QUERY, headers={"authorization": f"Bearer {wrong}"}
        )
        assert response.status_code == 401
        assert response.json()["error"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"].startswith("Bearer")
        messages.add(response.json()["message"])
    assert len(messages) == 1
    assert messages.pop().startswith("API key not recognised")


async def test_bearer_and_x_api_key_both_authenticate(
    client: httpx.AsyncClient, read_key: str
) -> None:
    for headers in ({"authorization": f"Bearer {read_key}"}, {"x-api-key": read_key}):
        response = await client.post("/graphql", json=QUERY, headers=headers)
        assert response.status_code == 200
        assert response.json()["data"]["templates"]["totalCount"] == 0


async def test_revoked_key_is_401(app: Starlette, client: httpx.AsyncClient, read_key: str) -> None:
    async with app.state.sessionmaker.begin() as session:
        await revoke_api_key(session, "test-reader")
    response = await client.post("/graphql", json=QUERY, headers={"x-api-key": read_key})
    assert response.status_code == 401
    wrong = await client.post("/graphql", json=QUERY, headers={"x-api-key": "cak_guess"})
    assert response.json() == wrong.json()
    assert response.json()["message"].startswith("API key not recognised")


async def test_key_without_scope_gets_forbidden_error(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    from app.domain.enums import Scope
    from app.security.api_keys import create_api_key

    async with app.state.sessionmaker.begin() as session:
        key = await create_api_key(session, "hooks-only", frozenset({Scope.WEBHOOKS}))
    response = await client.post("/graphql", json=QUERY, headers={"x-api-key": key})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_key_use_is_recorded(
    app: Starlette, client: httpx.AsyncClient, read_key: str
) -> None:
    from sqlalchemy import text

    async def last_used_and_now() -> tuple[Any, Any]:
        async with app.state.engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT last_used_at, now() FROM api_keys WHERE name = 'test-reader'")
                )
            ).one()
        return row[0], row[1]

    never, before = await last_used_and_now()
    assert never is None
    response = await client.post("/graphql", json=QUERY, headers={"x-api-key": read_key})
    assert response.status_code == 200, response.text
    await app.state.key_use.flush()  # written off the request path (tests/test_key_use.py)
    used, after = await last_used_and_now()
    assert before <= used <= after


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.post("/graphql", json=QUERY)
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2
    assert all(len(i) == 32 for i in ids)


async def test_a_well_formed_caller_request_id_is_kept(client: httpx.AsyncClient) -> None:
    kept = await client.get("/healthz", headers={"x-request-id": "proxy-123.abc"})
    assert kept.headers["x-request-id"] == "proxy-123.abc"
    replaced = await client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32
