"""The console in a real browser: Debian's Chromium driven by Playwright, against the service.

One Chromium for the session, driven by Playwright's async API on pytest-asyncio's session
loop (the sync API keeps a loop running for its whole life, which breaks every async test
after it); one service process (``python main.py``, embedded Redis, the fake model) for the
module; a fresh browser context per test, which fails the test on any
uncaught JavaScript error, any console error, or any request that leaves loopback.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright

from tests.fakes.openai_server import FakeOpenAI
from tests.process import ServiceProcess, poll, service_process

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 760}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


def model_env(fake: FakeOpenAI) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "test-key",
        "SWITCHBOARD_MODEL": "fake-model",
    }


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, _fake_openai: FakeOpenAI
) -> Iterator[ServiceProcess]:
    with service_process(tmp_path_factory.mktemp("console"), model_env(_fake_openai)) as running:
        yield running


@pytest.fixture(autouse=True)
def _default_model(_fake_openai: FakeOpenAI) -> None:
    """The console's services answer with the fake model's default brain. The fake is one per
    test process, and a test that ran before in this process may have left a script or
    another brain behind (tests share a process in any order under pytest-xdist)."""
    _fake_openai.reset()


@dataclass
class Watch:
    """What the page did that a test must not let pass."""

    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    tolerate: list[str] = field(default_factory=list)
    """Console errors a test expects: the browser logs a refused token or a refused
    connection (the service restarting) as an error of its own."""

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error" or any(t in message.text for t in self.tolerate):
            return
        self.errors.append(f"console: {message.text}")

    def on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob"):
            return
        if parts.hostname not in LOOPBACK:
            self.foreign.append(request.url)


@pytest.fixture
def watch() -> Watch:
    return Watch()


async def open_page(
    browser: Browser, watch: Watch, viewport: dict[str, int]
) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.on("request", watch.on_request)
    page = await context.new_page()
    page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))
    page.on("console", watch.on_console)
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        # A test's route handler may still be fetching the page's last poll: its error once
        # the context is gone would surface in the next test's set-up, not in this one.
        await page.unroute_all(behavior="ignoreErrors")
        await context.close()
    assert watch.errors == []
    assert watch.foreign == []


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, watch: Watch) -> AsyncIterator[Page]:
    async for p in open_page(browser, watch, DESKTOP):
        yield p


@pytest_asyncio.fixture(loop_scope="session")
async def phone(browser: Browser, watch: Watch) -> AsyncIterator[Page]:
    async for p in open_page(browser, watch, PHONE):
        yield p


# ---- driving the service ----------------------------------------------------------------
def start_thread(service: ServiceProcess, message: str, **headers: str) -> str:
    r = httpx.post(f"{service.base}/v1/threads", json={"message": message}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["thread_id"])


def pending_for(service: ServiceProcess, thread_id: str, **headers: str) -> dict[str, Any]:
    """The thread's pending request, once the agent has asked it."""

    def find() -> dict[str, Any] | None:
        pending = httpx.get(f"{service.base}/v1/requests?status=pending", headers=headers).json()
        mine = [p["request"] for p in pending if p["request"]["thread_id"] == thread_id]
        return mine[0] if mine else None

    return poll(find)


def thread_when(
    service: ServiceProcess, thread_id: str, until: Any, **headers: str
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = httpx.get(
            f"{service.base}/v1/threads/{thread_id}", headers=headers
        ).json()
        return body if until(body) else None

    return poll(check)


def decide(service: ServiceProcess, request_id: str, body: dict[str, Any]) -> None:
    r = httpx.post(f"{service.base}/v1/requests/{request_id}", json=body)
    assert r.status_code == 200, r.text
