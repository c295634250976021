"""A real browser for the GraphiQL test: Debian's headless Chromium, installed when missing.

Playwright (the pip package) drives it through ``executable_path``; Playwright's own browser
downloads are never used (``playwright install`` needs hosts these machines cannot reach).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", *args], capture_output=True, text=True, env=environment, timeout=900
    )


def install_chromium() -> str | None:
    """Install Debian's ``chromium`` when it is missing; the reason when that is impossible."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and installing it needs root (apt-get install chromium)"
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it"
    attempt = _apt_get("install", "-y", "--no-install-recommends", "chromium")
    if attempt.returncode != 0:  # a stale or empty package list: refresh it once
        _apt_get("update")
        attempt = _apt_get("install", "-y", "--no-install-recommends", "chromium")
    if attempt.returncode != 0 or not CHROMIUM.exists():
        return "apt-get install chromium failed: " + attempt.stderr.strip()[-500:]
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    problem = install_chromium()
    if problem is not None:
        pytest.skip(problem)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()
