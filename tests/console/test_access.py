"""The console on a phone, by keyboard alone, and signed in with a token across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from store.embedded import free_port
from tests.console.conftest import Watch, model_env, pending_for, start_thread, thread_when
from tests.console.test_console import card
from tests.fakes.openai_server import FakeOpenAI
from tests.process import ServiceProcess, service_process

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "console-test-token"
LONG = "deploy v1.2.6 to production " + "https://example.invalid/" + "x" * 180


async def no_sideways_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width}px wide"


async def test_phone_shows_the_inbox_and_a_thread_without_sideways_scrolling(
    phone: Page, service: ServiceProcess
) -> None:
    tid = start_thread(service, LONG)
    rid = pending_for(service, tid)["request_id"]
    await phone.goto(service.base)
    box = card(phone, rid)
    await expect(box).to_be_visible()
    await no_sideways_scroll(phone)
    await box.get_by_role("button", name="Approve").scroll_into_view_if_needed()
    await expect(box.get_by_role("button", name="Approve")).to_be_in_viewport()
    await box.get_by_role("link", name=tid).click()
    await expect(phone.locator("#timeline li.approval_request")).to_be_visible()
    await no_sideways_scroll(phone)


async def tab_to(page: Page, target: Locator, presses: int = 120) -> None:
    for _ in range(presses):
        if await target.evaluate("node => node === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target}")


async def test_every_action_is_reachable_by_keyboard(page: Page, service: ServiceProcess) -> None:
    tid = start_thread(service, "deploy v1.2.7 to staging")
    rid = pending_for(service, tid)["request_id"]
    await page.goto(service.base)
    approve = card(page, rid).get_by_role("button", name="Approve")
    await expect(approve).to_be_visible()
    await tab_to(page, approve)
    # Focus is visible: a real outline, not the browser's default removed.
    style = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert style == "solid"
    await page.keyboard.press("Enter")
    await expect(card(page, rid)).to_have_count(0)
    thread_when(service, tid, lambda t: t["state"]["status"] == "done")

    await tab_to(page, page.locator("nav a", has_text="Threads"))
    await page.keyboard.press("Enter")
    line = page.locator(f'#threads li[data-id="{tid}"] a')
    await expect(line).to_contain_text("Done: deployed v1.2.7 to staging")
    await tab_to(page, line)
    await page.keyboard.press("Enter")
    await expect(page.locator("#view-thread")).to_be_visible()
    await tab_to(page, page.get_by_label("Write to the thread"))
    await page.keyboard.type("thanks!")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # on Send
    await expect(page.locator("#notice")).to_have_text("Message sent to the thread.")
    await tab_to(page, page.get_by_role("link", name="← Inbox"))
    await page.keyboard.press("Enter")
    await expect(page.locator("#view-inbox")).to_be_visible()


async def test_sign_in_with_a_token_and_reconnect_after_a_restart(
    page: Page, watch: Watch, tmp_path: Path, fake_llm: FakeOpenAI
) -> None:
    # The browser logs a refused token, and the refused connections while the service is
    # down, as errors; here they are expected. (The stream itself ends cleanly on shutdown.)
    watch.tolerate = ["401 (Unauthorized)", "ERR_CONNECTION_REFUSED"]
    auth = {"authorization": f"Bearer {TOKEN}"}
    env = {**model_env(fake_llm), "SWITCHBOARD_API_TOKEN": TOKEN}
    port = free_port()
    with service_process(tmp_path, env, port=port) as first:
        await page.goto(first.base)
        await expect(page.locator("#view-signin")).to_be_visible()
        await page.get_by_label("API token").fill("not-the-token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#signin-form .error")).to_have_text(
            "The token was refused. Sign in again."
        )
        await page.get_by_label("API token").fill(TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#who")).to_have_text("Signed in as api")
        await expect(page.locator("#live")).to_have_text("live")
        assert TOKEN not in page.url
        assert await page.evaluate("sessionStorage.getItem('switchboard-token')") == TOKEN
        assert await page.evaluate("localStorage.length") == 0
    await expect(page.locator("#live")).to_have_text("reconnecting…")
    with service_process(tmp_path, env, port=port) as second:
        tid = start_thread(second, "deploy v1.2.8 to staging", **auth)
        rid = pending_for(second, tid, **auth)["request_id"]
        await expect(card(page, rid)).to_be_visible()
        await expect(page.locator("#live")).to_have_text("live")
        assert "Traceback" not in second.log()
