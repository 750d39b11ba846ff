"""The operator console as an operator uses it, in Chromium, against a running service."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Locator, Page, Route, expect

from tests.console.conftest import decide, pending_for, start_thread, thread_when
from tests.fakes.openai_server import FakeOpenAI
from tests.process import ServiceProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

REASON = "not before the 5pm freeze is lifted; staging first please"


def card(page: Page, request_id: str, where: str = "#inbox") -> Locator:
    return page.locator(f'{where} li[data-id="{request_id}"]')


def get_lines(service: ServiceProcess) -> int:
    return len(re.findall(r'"GET /', service.log()))


async def test_request_appears_live_and_a_slowly_typed_reason_reaches_the_model(
    page: Page, service: ServiceProcess, fake_llm: FakeOpenAI
) -> None:
    await page.goto(service.base)
    await expect(page.locator("#live")).to_have_text("live")
    await expect(page.locator("#who")).to_have_text("Loopback mode: no API token is configured")

    tid = start_thread(service, "deploy v1.2.3 to production")
    rid = pending_for(service, tid)["request_id"]
    box = card(page, rid)
    await expect(box).to_be_visible()  # no reload: the stream brought it
    await expect(box.locator("dl.call")).to_contain_text("production")
    await expect(box.locator(".facts")).to_contain_text("deploy v1.2.3 to production")
    await expect(page).to_have_title(re.compile(r"^\(\d+\) Switchboard$"))

    # Other threads keep the stream busy while the operator types, at human speed.
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set() and n < 20:
            start_thread(service, f"deploy v9.9.{n} to staging")
            n += 1
            stop.wait(0.4)

    gets_before = get_lines(service)
    worker = threading.Thread(target=churn)
    worker.start()
    try:
        reason = box.get_by_label("Reason")
        await reason.click()
        started = time.monotonic()
        await page.keyboard.type(REASON, delay=60)
        assert time.monotonic() - started >= 3
    finally:
        stop.set()
        worker.join()
    await expect(page.locator("#inbox > li")).not_to_have_count(1)  # the others did arrive
    await expect(reason).to_have_value(REASON)
    await expect(reason).to_be_focused()
    # The console fetched nothing while it sat open: the stream pushes, nothing polls.
    assert get_lines(service) == gets_before

    await box.get_by_role("button", name="Reject").click()
    await expect(box).to_have_count(0)
    thread = thread_when(service, tid, lambda t: t["state"]["status"] == "done")
    assert REASON in thread["events"][-1]["text"]
    assert any(REASON in context for context in fake_llm.contexts())


async def test_approve_from_the_inbox(page: Page, service: ServiceProcess) -> None:
    await page.goto(service.base)
    tid = start_thread(service, "deploy v1.2.4 to staging")
    rid = pending_for(service, tid)["request_id"]
    box = card(page, rid)
    await box.get_by_role("button", name="Approve").click()
    await expect(box).to_have_count(0)
    await expect(page.locator("#notice")).to_contain_text(f"Approved deploy ({rid})")
    thread = thread_when(service, tid, lambda t: t["state"]["status"] == "done")
    results = [e["output"] for e in thread["events"] if e["type"] == "tool_result"]
    assert results == ["deployed v1.2.4 to staging"]
    decision = next(e for e in thread["events"] if e["type"] == "approved")
    assert (decision["channel"], decision["responder"]) == ("rest", "api")


async def test_answer_a_question_watch_the_thread_and_go_back(
    page: Page, service: ServiceProcess
) -> None:
    await page.goto(service.base)
    tid = start_thread(service, "good morning")
    rid = pending_for(service, tid)["request_id"]
    box = card(page, rid)
    await expect(box.locator(".ask")).to_have_text("What would you like me to do?")
    await box.get_by_role("link", name=tid).click()
    await expect(page).to_have_url(f"{service.base}/#thread/{tid}")
    await expect(page.locator("#thread-title")).to_have_text("good morning")
    timeline = page.locator("#timeline")
    await expect(timeline.locator("li.user_message")).to_contain_text("api via rest")
    await expect(timeline.locator("li.question")).to_contain_text("What would you like me to do?")
    await expect(timeline.locator("time").first).to_have_attribute("datetime", re.compile(r"^20"))

    here = card(page, rid, "#thread-requests")
    await expect(here.get_by_role("link")).to_have_count(0)  # no link to where it is
    await here.get_by_label("Your answer").fill("nothing today, thanks")
    await here.get_by_role("button", name="Answer").click()
    # The rest arrives through the stream: the answer, then the agent's last word.
    await expect(timeline.locator("li.answered")).to_contain_text("nothing today, thanks")
    await expect(timeline.locator("li.final_answer")).to_contain_text("Thanks, noted.")
    await expect(page.locator("#thread-meta .status")).to_have_text("done")
    await expect(page.locator("#deliveries")).to_contain_text("final to rest:api: sent")

    await page.get_by_role("link", name="← Inbox").click()
    await expect(page.locator("#view-inbox")).to_be_visible()
    await page.get_by_label("Kind").select_option("question")
    await expect(page.locator('#inbox > li[data-kind="approval"]:visible')).to_have_count(0)
    await page.get_by_label("Kind").select_option("")
    await expect(card(page, rid)).to_have_count(0)
    await page.go_back()
    await expect(page.locator("#view-thread")).to_be_visible()
    await page.get_by_role("link", name="Threads").first.click()
    line = page.locator(f'#threads li[data-id="{tid}"]')
    await expect(line).to_contain_text("good morning")
    await expect(line).to_contain_text("deploybot: Thanks, noted.")
    await page.get_by_label("Search").fill(tid)
    await expect(page.locator("#threads > li:visible")).to_have_count(1)


async def test_start_a_thread_and_write_to_it(page: Page, service: ServiceProcess) -> None:
    await page.goto(f"{service.base}/#new")
    await page.get_by_label("Message").fill("hello, who are you?")
    await page.get_by_role("button", name="Start").click()
    await expect(page.locator("#view-thread")).to_be_visible()
    await expect(page.locator("#thread-title")).to_have_text("hello, who are you?")
    await expect(page.locator("#thread-requests li")).to_have_count(1)
    await page.get_by_label("Write to the thread").fill("deploy v1.2.5 to staging")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator("#timeline li.user_message")).to_have_count(2)
    approval = page.locator("#thread-requests h3", has_text="Approve deploy?")
    await expect(approval).to_be_visible()


async def test_edit_quorum_and_deadline_show_once_the_api_sends_them(
    page: Page, service: ServiceProcess
) -> None:
    """Edit-then-approve and quorum come with approval policies; the console is ready."""
    now = datetime.now(UTC)
    request = {
        "request": {
            "request_id": "rq_edit",
            "thread_id": "th_edit",
            "kind": "approval",
            "text": "Approval needed: deploy",
            "tool": "deploy",
            "arguments": {"tag": "v1.2.3", "env": "production"},
            "created": now.isoformat(),
            "deadline": (now + timedelta(hours=4)).isoformat(),
            "editable": ["env"],
            "approvals_needed": 2,
            "approvals_given": 1,
        },
        "status": "pending",
        "agent": "deploybot",
        "origin": {"channel": "rest", "address": "alice", "route": {}},
        "offers": [],
    }
    snapshot = json.dumps({"requests": [request], "threads": []})
    decided: list[Any] = []

    async def stream(route: Route) -> None:
        body = f"event: snapshot\r\ndata: {snapshot}\r\n\r\n"
        await route.fulfill(status=200, content_type="text/event-stream", body=body)

    async def answer(route: Route) -> None:
        decided.append(route.request.post_data_json)
        await route.fulfill(json={"request_id": "rq_edit", "thread_id": "th_edit"})

    await page.route("**/v1/stream", stream)
    await page.route("**/v1/requests/rq_edit", answer)
    await page.goto(service.base)
    box = card(page, "rq_edit")
    await expect(box.locator(".facts")).to_contain_text("approvals 1 of 2")
    await expect(box.locator(".facts")).to_contain_text("deadline in 3 h")
    await box.get_by_text("Edit, then approve").click()
    await box.get_by_label("env").fill("staging")
    await box.get_by_role("button", name="Approve with these values").click()
    await expect(box).to_have_count(0)
    assert decided == [{"decision": "approve", "arguments": {"env": "staging"}}]


async def test_a_request_decided_elsewhere_keeps_what_the_operator_typed(
    page: Page, service: ServiceProcess
) -> None:
    await page.goto(service.base)
    tid = start_thread(service, "deploy v1.2.9 to production")
    rid = pending_for(service, tid)["request_id"]
    box = card(page, rid)
    await box.get_by_label("Reason").fill("wait for the freeze")
    decide(service, rid, {"decision": "approve"})  # someone else, on another channel
    await expect(box.locator(".error")).to_contain_text("decided elsewhere")
    await expect(box.get_by_label("Reason")).to_have_value("wait for the freeze")
    await expect(box.get_by_role("button", name="Reject")).to_be_disabled()
    await box.get_by_role("button", name="Dismiss").click()
    await expect(box).to_have_count(0)


async def test_a_handoffs_threads_link_each_other(page: Page, service: ServiceProcess) -> None:
    tid = start_thread(service, "roll production back")
    pending_for(service, tid)  # it rests: the thread API has it

    async def linked(route: Route) -> None:
        # The thread as a handoff's middle would show it: started by one, starting another.
        response = await route.fetch()
        body = await response.json()
        body["meta"]["parent"] = {"thread_id": "th_parent", "call_id": "call_1", "depth": 1}
        body["children"] = [{"thread_id": "th_child", "agent": "rollbackbot", "call_id": "call_2"}]
        await route.fulfill(response=response, json=body)

    await page.route(f"**/v1/threads/{tid}", linked)
    await page.goto(f"{service.base}/#thread/{tid}")
    links = page.locator("#thread-links")
    await expect(links).to_have_text("handed over by th_parent · handed to rollbackbot: th_child")
    await expect(links.get_by_role("link", name="th_child")).to_have_attribute(
        "href", "#thread/th_child"
    )
    await expect(links.get_by_role("link", name="th_parent")).to_have_attribute(
        "href", "#thread/th_parent"
    )
