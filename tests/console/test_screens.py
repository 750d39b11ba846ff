"""Screenshots of the console for the README: ``CONSOLE_SCREENSHOTS=docs python3 dev.py test
tests/console/test_screens.py`` writes them there; without it they go to a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.console.conftest import (
    DESKTOP,
    PHONE,
    Watch,
    decide,
    open_page,
    pending_for,
    start_thread,
)
from tests.console.test_console import card
from tests.process import ServiceProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_screenshots(browser: Browser, service: ServiceProcess, tmp_path: Path) -> None:
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    done = start_thread(service, "deploy v1.4.0 to staging")
    rid = pending_for(service, done)["request_id"]
    decide(service, rid, {"decision": "approve"})
    tid = start_thread(service, "deploy v1.4.1 to production")
    rid = pending_for(service, tid)["request_id"]
    pending_for(service, start_thread(service, "what can you do?"))
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        async for page in open_page(browser, Watch(), viewport):
            await page.goto(service.base)
            await expect(card(page, rid)).to_be_visible()
            await page.screenshot(path=folder / f"console-inbox-{name}.png")
            await page.goto(f"{service.base}/#thread/{tid}")
            await expect(page.locator("#timeline li.approval_request")).to_be_visible()
            await page.screenshot(path=folder / f"console-thread-{name}.png", full_page=True)
    check_pngs(folder)


def check_pngs(folder: Path) -> None:
    pngs = sorted(folder.glob("console-*.png"))
    assert len(pngs) == 4
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
