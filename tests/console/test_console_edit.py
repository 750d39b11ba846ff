"""Edit-then-approve and grants in the console, in Chromium, against a service whose deploy
tool lets an approver change ``env`` and approve for the rest of the thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect

from tests.conftest import ROOT
from tests.console.conftest import Watch, model_env, pending_for, start_thread, thread_when
from tests.console.test_console import card
from tests.fakes.openai_server import FakeOpenAI
from tests.process import ServiceProcess, service_process

pytestmark = pytest.mark.asyncio(loop_scope="session")

POLICY = """
[agents.deploybot.tools.deploy.approval]
editable = ["env"]
grants = ["thread"]
"""


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, _fake_openai: FakeOpenAI
) -> Iterator[ServiceProcess]:
    text = (ROOT / "switchboard.toml").read_text()
    text = text.replace('approvers = ["rest:*"]', 'approvers = ["rest:*"]\n' + POLICY)
    tmp = tmp_path_factory.mktemp("console-edit")
    with service_process(tmp, model_env(_fake_openai), config=text) as running:
        yield running


def _results(body: dict[str, object]) -> list[str]:
    events = body["events"]
    assert isinstance(events, list)
    return [e["output"] for e in events if e["type"] == "tool_result"]


async def test_an_edit_from_the_console_runs_the_edited_call(
    page: Page, service: ServiceProcess, watch: Watch
) -> None:
    watch.tolerate.append("status of 422")  # the browser logs the refused edit itself
    await page.goto(service.base)
    tid = start_thread(service, "deploy v1.2.3 to production")
    rid = pending_for(service, tid)["request_id"]
    box = card(page, rid)
    await box.get_by_text("Edit, then approve").click()
    await expect(box.get_by_label("env")).to_have_value("production")

    await box.get_by_label("env").fill("moon")  # not an environment: refused, nothing decided
    await box.get_by_role("button", name="Approve with these values").click()
    await expect(box.locator(".error")).to_contain_text("env")
    assert pending_for(service, tid)["request_id"] == rid

    await box.get_by_label("env").fill("staging")
    await box.get_by_role("button", name="Approve with these values").click()
    await expect(box).to_have_count(0)
    body = thread_when(service, tid, lambda t: t["state"]["status"] == "done")
    [output] = _results(body)
    assert output.endswith("deployed v1.2.3 to staging")


async def test_approve_for_this_thread_from_the_console(
    page: Page, service: ServiceProcess
) -> None:
    await page.goto(service.base)
    tid = start_thread(service, "deploy v1.2.3 to production")
    rid = pending_for(service, tid)["request_id"]
    box = card(page, rid)
    await box.get_by_role("button", name="Approve for this thread").click()
    await expect(box).to_have_count(0)
    body = thread_when(service, tid, lambda t: t["state"]["status"] == "done")
    assert [e["type"] for e in body["events"] if e["type"] == "granted"] == ["granted"]
