"""GraphiQL in a real headless Chromium, served with its Content-Security-Policy on: open the
page, put an API key in the header editor, see the schema arrive by itself (docs and
autocomplete), run the dashboard query and read the seed data in the result pane, open a
dialog; no CSP violation anywhere. Then where the key is kept: this tab only, unless the user
asks to remember it. The screenshot is kept in test-artifacts/ (the README's comes from it)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect
from starlette.applications import Starlette

from app.cli.seed import _templates
from app.settings import Settings
from testkit.examples import example
from tests.live_server import serving

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ACTIVE_TEMPLATES = {t["name"] for t in _templates() if t.get("is_active", True)}
HEADERS_KEY = "campaign-api:headers"

# Every violation the page reports, whatever the console says about it.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.effectiveDirective} ${event.blockedURI}`);
});
"""


class Watched:
    """A page whose console errors and CSP violations are collected."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console_errors: list[str] = []
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.console_errors.append(message.text)

    async def assert_clean(self) -> None:
        violations = await self.page.evaluate("window.cspViolations")
        assert violations == [], violations
        csp = [text for text in self.console_errors if "Content Security Policy" in text]
        assert csp == [], csp


@pytest.fixture
async def graphiql(
    seeded: Starlette, settings: Settings, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Watched]]:
    async with serving(seeded, settings, monkeypatch) as base_url:
        context = await browser.new_context(viewport={"width": 1440, "height": 900})
        await context.add_init_script(RECORD_VIOLATIONS)
        yield base_url, Watched(await context.new_page())
        await context.close()


async def type_headers(page: Page, headers: dict[str, str]) -> None:
    await page.locator('.graphiql-editor-tools button[data-name="headers"]').click()
    editor = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror")
    await editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text(json.dumps(headers, indent=2))


async def editor_text(page: Page, selector: str) -> str:
    text: str = await page.locator(f"{selector} .CodeMirror").evaluate(
        "(node) => node.CodeMirror.getValue()"
    )
    return text


async def test_graphiql_works_under_its_csp_and_fetches_the_schema_once_a_key_is_typed(
    graphiql: tuple[str, Watched], read_key: str
) -> None:
    base_url, watched = graphiql
    page = watched.page
    response = await page.goto(f"{base_url}/graphql")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert response.headers["x-frame-options"] == "DENY"

    help_text = page.locator("#auth-help")
    await expect(help_text).to_contain_text('{"Authorization": "Bearer cak_')
    await expect(help_text).to_contain_text("Headers")
    query = page.locator(".graphiql-query-editor .CodeMirror")
    await expect(query).to_be_visible()

    await type_headers(page, {"Authorization": f"Bearer {read_key}"})

    # The schema follows the key, with no manual re-fetch: the docs and autocomplete know it.
    await page.locator('.graphiql-sidebar button[aria-label="Show Documentation Explorer"]').click()
    docs = page.locator(".graphiql-doc-explorer")
    await expect(docs.get_by_text("Query", exact=True)).to_be_visible(timeout=15_000)
    await query.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.type("{ templ")
    hints = page.locator(".CodeMirror-hints")
    await expect(hints).to_contain_text("templates")
    await page.keyboard.press("Escape")

    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text(example("dashboard.graphql"))
    await page.locator(".graphiql-execute-button").click()

    result = page.locator(".graphiql-response")
    names = "|".join(re.escape(name) for name in sorted(ACTIVE_TEMPLATES))
    await expect(result).to_contain_text(re.compile(names), timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "graphiql.png")

    # The pane renders only the lines in view; the editor holds the whole answer.
    answer = json.loads(await editor_text(page, ".graphiql-response"))
    assert "errors" not in answer, answer
    shown = {node["name"] for node in answer["data"]["templates"]["nodes"]}
    assert shown == ACTIVE_TEMPLATES

    # A dialog: Radix adds <style> elements at run time, which the CSP must admit.
    await page.locator('.graphiql-sidebar button[aria-label="Open settings dialog"]').click()
    await expect(page.locator(".graphiql-dialog")).to_be_visible()
    await page.keyboard.press("Escape")
    await watched.assert_clean()


async def test_the_key_stays_in_the_tab_unless_the_user_asks_to_remember_it(
    graphiql: tuple[str, Watched], read_key: str
) -> None:
    base_url, watched = graphiql
    page = watched.page
    await page.goto(f"{base_url}/graphql")
    await type_headers(page, {"Authorization": f"Bearer {read_key}"})

    async def stored() -> tuple[str, str]:
        local, session = await page.evaluate(
            "() => [JSON.stringify(localStorage), JSON.stringify(sessionStorage)]"
        )
        return local, session

    for _ in range(100):  # GraphiQL reports an edit a moment after it
        local, session = await stored()
        if HEADERS_KEY in session:
            break
        await page.wait_for_timeout(50)
    assert read_key not in local
    assert read_key in json.loads(session)[HEADERS_KEY]

    await page.reload()  # the same tab keeps it
    await expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
    assert read_key in await editor_text(
        page, ".graphiql-editor-tool .graphiql-editor:not(.hidden)"
    )

    await page.locator("#remember-key").check()
    local, session = await stored()
    assert read_key in json.loads(local)[HEADERS_KEY]
    assert read_key not in session

    await page.locator("#remember-key").uncheck()
    local, session = await stored()
    assert read_key not in local
    assert read_key in session
    await watched.assert_clean()
