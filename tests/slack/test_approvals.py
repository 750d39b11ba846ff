"""Approvals in Slack: buttons on the request, signed block_actions back, the reject modal,
and who may decide. The first test is the issue's "done when" flow, end to end."""

from __future__ import annotations

from typing import Any

from model.events import Approved, FinalAnswer, HumanResponse, ToolResult
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import Posted
from tests.slack.kit import ALICE, GENERAL, MALLORY, OPS, PUBLIC, SlackKit, mention, thread_of


async def _deploy_waiting(kit: SlackKit, service: Service) -> tuple[str, str, Posted]:
    """A mention asking to deploy, paused on its approval request: (tid, root ts, message)."""
    root = kit.fake.next_ts()
    r = await kit.event(mention("please deploy v1.2.3 to production", root))
    assert r.status_code == 200, r.text
    tid = thread_of(GENERAL, root)
    await service.settled(tid, "awaiting_human")
    [approval] = kit.fake.thread(GENERAL, root)
    return tid, root, approval


def _buttons(message: Posted) -> list[dict[str, Any]]:
    return [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def _shown(message: Posted) -> str:
    parts = [message.text]
    for b in message.blocks:
        if b["type"] == "section":
            parts.append(b["text"]["text"])
        elif b["type"] == "context":
            parts += [e["text"] for e in b["elements"]]
    return "\n".join(parts)


async def test_done_when_mention_deploy_approved_in_slack_runs_once_and_answers(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    tid, root, approval = await _deploy_waiting(slack_kit, service)
    # The approval request sits in the Slack thread, with buttons, tool and arguments.
    # The approvers are @-mentioned (in the text too, so that the notification pings them).
    assert approval.text == (
        f"<@{ALICE}> <!subteam^{OPS}> Approval needed: deploy(tag='v1.2.3', env='production')"
    )
    shown = _shown(approval)
    assert "*Approval needed:* `deploy`" in shown
    assert "• *tag:* `v1.2.3`" in shown
    assert "• *env:* `production`" in shown
    # Enough to decide: who asked and what they wrote, the agent, quorum, the thread page.
    assert f"*Asked by* <@{ALICE}> *in* deploybot" in shown
    assert "> please deploy v1.2.3 to production" in shown
    assert "*Approvals:* 0 of 1" in shown
    assert f"<{PUBLIC}/t/{tid}?exp=" in shown
    assert f"Asking <@{ALICE}> <!subteam^{OPS}>" in shown
    link = shown.split(f"<{PUBLIC}", 1)[1].split("|", 1)[0]
    page = await slack_kit.http.get(link.replace("&amp;", "&"))
    assert page.status_code == 200
    assert "please deploy v1.2.3 to production" in page.text
    buttons = _buttons(approval)
    [request] = (await service.store.thread(tid)).requests
    rid = request.request.request_id
    assert [(b["action_id"], b["value"], b.get("style")) for b in buttons] == [
        ("sb_approve", rid, "primary"),
        ("sb_reject", rid, "danger"),
    ]

    slack_kit.fake.users[ALICE] = "Alice"
    r = await slack_kit.click(ALICE, "sb_approve", rid, GENERAL, approval.ts, root)
    assert r.status_code == 200, r.text
    view = await service.settled(tid, "done")
    await slack_kit.settle()

    results = [e for e in view.events if isinstance(e, ToolResult)]
    assert [(e.tool, e.output) for e in results] == [("deploy", "deployed v1.2.3 to production")]
    [decision] = [e for e in view.events if isinstance(e, HumanResponse)]
    assert (decision.channel, decision.responder, decision.verdict) == ("slack", ALICE, "approve")
    final = [e for e in view.events if isinstance(e, FinalAnswer)][-1]
    posted = slack_kit.fake.thread(GENERAL, root)
    assert posted[0].ts == approval.ts
    assert posted[-1].text == final.text == "Done: deployed v1.2.3 to production"
    assert len(posted) == 2

    # The approval message now says who approved and when; its buttons are gone.
    updated = slack_kit.fake.messages[(GENERAL, approval.ts)]
    assert updated.updates == 1
    assert _buttons(updated) == []
    assert f"Approved by Alice (<@{ALICE}>) <!date^" in _shown(updated)  # users.info's name
    assert "• *tag:* `v1.2.3`" in _shown(updated)

    # A second click changes nothing: the clicker is told, the tool does not run again.
    again = await slack_kit.click(ALICE, "sb_approve", rid, GENERAL, approval.ts, root)
    assert again.status_code == 200
    await slack_kit.settle()
    assert slack_kit.fake.messages[(GENERAL, approval.ts)].updates == 1
    [note] = slack_kit.fake.called("chat.postEphemeral")
    # ... what became of it: who decided, when (a late answer starts nothing).
    [approved] = [e for e in (await service.store.thread(tid)).events if e.type == "approved"]
    assert (note["user"], note["text"]) == (
        ALICE,
        f"deploy(tag='v1.2.3', env='production') was already approved by <@{ALICE}> "
        f"at {approved.at:%H:%M} UTC. Nothing was changed.",
    )
    view = await service.settled(tid, "done")
    assert len([e for e in view.events if isinstance(e, ToolResult)]) == 1
    assert len([e for e in view.events if isinstance(e, HumanResponse)]) == 1


async def test_reject_asks_for_a_reason_that_reaches_the_model(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    tid, root, approval = await _deploy_waiting(slack_kit, service)
    rid = _buttons(approval)[1]["value"]
    r = await slack_kit.click(ALICE, "sb_reject", rid, GENERAL, approval.ts, root)
    assert r.status_code == 200
    await slack_kit.settle()
    [opened] = slack_kit.fake.called("views.open")
    assert opened["trigger_id"] == f"trigger-{ALICE}-sb_reject"
    modal = opened["view"]
    assert modal["callback_id"] == "sb_reject_reason"
    # Nothing is decided until the reason comes.
    assert [q.status for q in (await service.store.thread(tid)).requests] == ["pending"]

    empty = await slack_kit.submit(ALICE, modal, "   ")
    assert empty.json() == {"response_action": "errors", "errors": {"reason": "Give a reason."}}
    r = await slack_kit.submit(ALICE, modal, "freeze until Monday <3 & co")
    assert r.status_code == 200
    assert not r.content  # the modal closes
    view = await service.settled(tid, "done")
    await slack_kit.settle()

    assert "rejected by U0ALICE: freeze until Monday <3 & co</rejected>" in fake_llm.contexts()[-1]
    assert [e.outcome for e in view.events if isinstance(e, ToolResult)] == ["rejected"]
    updated = slack_kit.fake.messages[(GENERAL, approval.ts)]
    assert _buttons(updated) == []
    assert "Rejected by <@U0ALICE>" in _shown(updated)
    assert "freeze until Monday &lt;3 &amp; co" in _shown(updated)
    last = slack_kit.fake.thread(GENERAL, root)[-1]
    assert last.text.startswith("Not deploying (rejected by U0ALICE: freeze until Monday")

    # The same modal submitted again (a double submit) decides nothing more.
    again = await slack_kit.submit(ALICE, modal, "another reason")
    [reason] = again.json()["errors"].values()
    assert reason.startswith("deploy(tag='v1.2.3', env='production') was already rejected by ")


async def test_only_approvers_decide_others_get_an_ephemeral_refusal(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    tid, root, approval = await _deploy_waiting(slack_kit, service)
    rid = _buttons(approval)[0]["value"]
    slack_kit.fake.groups[OPS] = ["U0BOB"]
    for action in ("sb_approve", "sb_reject"):
        r = await slack_kit.click(MALLORY, action, rid, GENERAL, approval.ts, root)
        assert r.status_code == 200
    await slack_kit.settle()
    refusals = slack_kit.fake.called("chat.postEphemeral")
    assert [(n["user"], n["channel"], n["thread_ts"]) for n in refusals] == [
        (MALLORY, GENERAL, root)
    ] * 2
    assert all("not among the approvers" in n["text"] for n in refusals)
    # ... and it says who can: the tool's approvers, a person and a user group.
    assert all(f"Who can approve: <@{ALICE}>, <!subteam^{OPS}>." in n["text"] for n in refusals)
    assert slack_kit.fake.called("views.open") == []
    assert slack_kit.fake.called("chat.update") == []
    assert [q.status for q in (await service.store.thread(tid)).requests] == ["pending"]

    # A member of an approving user group may decide.
    r = await slack_kit.click("U0BOB", "sb_approve", rid, GENERAL, approval.ts, root)
    assert r.status_code == 200
    view = await service.settled(tid, "done")
    [decision] = [e for e in view.events if isinstance(e, HumanResponse)]
    assert decision.responder == "U0BOB"
    assert slack_kit.fake.called("usergroups.users.list")[-1]["usergroup"] == OPS


async def test_forged_click_is_refused(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    tid, root, approval = await _deploy_waiting(slack_kit, service)
    rid = _buttons(approval)[0]["value"]
    real = slack_kit.post

    async def forged(body: bytes, content_type: str, **kw: Any) -> Any:
        return await real(body, content_type, secret="guessed", **kw)

    slack_kit.post = forged  # type: ignore[method-assign]
    r = await slack_kit.click(ALICE, "sb_approve", rid, GENERAL, approval.ts, root)
    assert r.status_code == 401
    assert [q.status for q in (await service.store.thread(tid)).requests] == ["pending"]


async def test_decided_elsewhere_the_slack_message_catches_up_on_a_click(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    tid, root, approval = await _deploy_waiting(slack_kit, service)
    rid = _buttons(approval)[0]["value"]
    response = Approved(
        request_id=rid,
        channel="rest",
        responder="ops-bot",
    )
    await service.store.answer(rid, response, check=False)
    await service.settled(tid, "done")

    slack_kit.fake.fail("chat.update", 429, retry_after=1)  # the update is retried after 1 s
    r = await slack_kit.click(ALICE, "sb_approve", rid, GENERAL, approval.ts, root)
    assert r.status_code == 200
    await slack_kit.settle()
    [note] = slack_kit.fake.called("chat.postEphemeral")
    assert note["text"].startswith(
        "deploy(tag='v1.2.3', env='production') was already approved by rest:ops-bot at "
    )
    assert len(slack_kit.fake.called("chat.update")) == 2
    updated = slack_kit.fake.messages[(GENERAL, approval.ts)]
    assert _buttons(updated) == []
    assert "Approved by ops-bot (via rest)" in _shown(updated)
    view = await service.store.thread(tid)
    assert len([e for e in view.events if isinstance(e, ToolResult)]) == 1


async def test_click_on_an_unknown_request_is_refused(slack_kit: SlackKit) -> None:
    r = await slack_kit.click(ALICE, "sb_approve", "rq_gone", GENERAL, "1.000001", "1.000001")
    assert r.status_code == 200
    await slack_kit.settle()
    [note] = slack_kit.fake.called("chat.postEphemeral")
    assert (note["user"], note["text"]) == (ALICE, "This request no longer exists.")
    assert slack_kit.fake.called("chat.update") == []
