"""One real Chromium for the session's browser tests: Debian's, launched by path
(`make chromium` installs it; Playwright downloads no browser here)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--headless",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Set to a folder (docs/screenshots) to keep one screenshot per page there as well.
SCREENSHOTS_ENV = "PAYSAGA_SCREENSHOTS_DIR"


@pytest_asyncio.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "chromium is missing: `make chromium` installs it"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest_asyncio.fixture
async def page(chromium: Browser) -> AsyncIterator[Page]:
    """A fresh browser profile (no cookies) at a phone-friendly laptop size."""
    context: BrowserContext = await chromium.new_context(viewport={"width": 1100, "height": 900})
    yield await context.new_page()
    await context.close()


class Screenshots:
    """Every page a test visits, saved under the test's tmp dir (an artifact), and copied
    to $PAYSAGA_SCREENSHOTS_DIR when set (the README's pictures)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def take(self, page: Page, name: str) -> Path:
        path = self.directory / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        shared = os.environ.get(SCREENSHOTS_ENV)
        if shared:
            Path(shared).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(shared) / path.name)
        return path


@pytest.fixture
def screenshots(tmp_path: Path) -> Screenshots:
    return Screenshots(tmp_path)
