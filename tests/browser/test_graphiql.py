"""GraphiQL in a real headless Chromium: open the page served by the app, put an API key in the
header editor and the dashboard query in the query editor, run it, and read the seed data in
the result pane. The screenshot is kept in test-artifacts/ (the README's comes from it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from starlette.applications import Starlette

from app.cli.seed import _templates
from app.settings import Settings
from testkit.examples import example
from tests.live_server import serving

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ACTIVE_TEMPLATES = {t["name"] for t in _templates() if t.get("is_active", True)}


async def test_graphiql_runs_the_dashboard_with_a_key_from_the_header_editor(
    seeded: Starlette,
    settings: Settings,
    read_key: str,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(seeded, settings, monkeypatch) as base_url:
        page = await browser.new_page(viewport={"width": 1440, "height": 900})
        await page.goto(f"{base_url}/graphql")

        help_text = page.locator("#auth-help")
        await expect(help_text).to_contain_text('{"Authorization": "Bearer cak_')
        await expect(help_text).to_contain_text("Headers")

        await page.locator('.graphiql-editor-tools button[data-name="headers"]').click()
        headers = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror")
        await headers.click()
        await page.keyboard.press("Control+A")
        await page.keyboard.insert_text(
            json.dumps({"Authorization": f"Bearer {read_key}"}, indent=2)
        )

        query = page.locator(".graphiql-query-editor .CodeMirror")
        await query.click()
        await page.keyboard.press("Control+A")
        await page.keyboard.insert_text(example("dashboard.graphql"))
        await page.locator(".graphiql-execute-button").click()

        result = page.locator(".graphiql-response")
        names = "|".join(re.escape(name) for name in sorted(ACTIVE_TEMPLATES))
        await expect(result).to_contain_text(re.compile(names), timeout=30_000)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "graphiql.png")

        # The pane renders only the lines in view; the editor holds the whole answer.
        answer = json.loads(
            await result.locator(".CodeMirror").evaluate("(node) => node.CodeMirror.getValue()")
        )
        assert "errors" not in answer, answer
        shown = {node["name"] for node in answer["data"]["templates"]["nodes"]}
        assert shown == ACTIVE_TEMPLATES
