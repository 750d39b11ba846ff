"""Approvals by text message, end to end: REST thread, fake Twilio, signed webhooks, worker."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from channels.sms import segments
from model.events import (
    DeliveryFailed,
    FinalAnswer,
    Granted,
    GrantUsed,
    HumanResponse,
    Rerouted,
    ToolResult,
)
from model.ids import thread_id_for
from store import keys
from tests.fakes.openai_server import FakeOpenAI, step
from tests.sms.conftest import APPROVER, OTHER, OURS, PUBLIC, TALKER, Sms, approval_to

Factory = Callable[..., Awaitable[Sms]]


async def _rest_thread(
    sms: Sms, text: str = "deploy v1.2.3 to production", sender: str = "alice"
) -> str:
    r = await sms.service.api.post("/v1/threads", json={"message": text, "sender": sender})
    assert r.status_code == 201, r.text
    return str(r.json()["thread_id"])


async def test_rest_thread_approved_by_sms_answers_on_rest(sms_factory: Factory) -> None:
    """Done when: REST asks -> phone gets it via Twilio -> signed YES -> runs once -> REST."""
    sms = await sms_factory()
    tid = await _rest_thread(sms)
    view = await sms.service.settled(tid, "awaiting_human")

    [sent] = sms.fake.messages
    assert sent["To"] == APPROVER
    assert sent["From"] == OURS
    approval = next(o for o in view.outbox if o.item.kind == "approval")
    callback = f"{PUBLIC}/twilio/status?t={tid}&o={approval.item.outbox_id}"
    assert sent["StatusCallback"] == callback  # tagged with the item, signed by Twilio
    assert sent["Body"].startswith("deploybot: approve deploy(tag=v1.2.3, env=production)?")
    assert 'Asked by rest:alice: "deploy v1.2.3 to production"' in sent["Body"]
    assert sent["Body"].endswith("Reply YES, or NO and a reason.")
    approval = next(o for o in view.outbox if o.item.kind == "approval")
    assert approval.item.to.channel == "sms"
    assert approval.provider_id == sent["Sid"]
    # The REST caller is told where the approval went.
    assert [o.item.to.channel for o in view.outbox if o.item.kind == "notice"] == ["rest"]

    r = await sms.text(APPROVER, "yes")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert "<Message>Approved: deploy(tag='v1.2.3', env='production').</Message>" in r.text

    view = await sms.service.settled(tid, "done")
    assert sms.deploys() == 1
    [result] = [e for e in view.events if isinstance(e, ToolResult)]
    assert result.output == "deployed v1.2.3 to production"
    [response] = [e for e in view.events if isinstance(e, HumanResponse)]
    assert (response.channel, response.responder, response.verdict) == ("sms", APPROVER, "approve")
    final = view.outbox[-1]
    assert (final.item.kind, final.item.to.channel, final.status) == ("final", "rest", "sent")
    assert "deployed v1.2.3 to production" in final.item.text
    assert len(sms.fake.messages) == 1  # the final answer went to REST, not to the phone

    # A second YES decides nothing, and starts no conversation: it hears who decided, when.
    r = await sms.text(APPROVER, "YES")
    assert re.search(
        rf"<Message>deploy\(tag='v1.2.3', env='production'\) was already approved by "
        rf"sms:\{APPROVER} at \d\d:\d\d UTC. Nothing was changed.</Message>",
        r.text,
    ), r.text
    phone_thread = thread_id_for("sms", f"{OURS}:{APPROVER}")
    assert not await sms.store.redis.exists(keys.meta(phone_thread))
    assert sms.deploys() == 1
    assert len((await sms.store.thread(tid)).events) == len(view.events)


async def test_reject_with_reason(sms_factory: Factory) -> None:
    sms = await sms_factory()
    tid = await _rest_thread(sms)
    await sms.service.settled(tid, "awaiting_human")

    r = await sms.text(APPROVER, "NO freeze until Monday")
    assert "Rejected" in r.text
    view = await sms.service.settled(tid, "done")
    assert sms.deploys() == 0
    [result] = [e for e in view.events if isinstance(e, ToolResult)]
    assert result.outcome == "rejected"
    assert "freeze until Monday" in result.output
    assert "freeze until Monday" in [e for e in view.events if isinstance(e, FinalAnswer)][-1].text


async def test_two_pending_requests_need_their_codes(sms_factory: Factory) -> None:
    sms = await sms_factory()
    first = await _rest_thread(sms, "deploy v1.2.3 to production")
    await sms.service.settled(first, "awaiting_human")
    second = await _rest_thread(sms, "deploy v1.2.4 to staging")
    await sms.service.settled(second, "awaiting_human")

    one, two = sms.fake.sent_to(APPROVER)
    assert "Reply YES, or NO" in one
    code2 = re.search(r"Reply YES (\d{4}), or NO \1 and a reason\.$", two)
    assert code2, two

    # YES alone is ambiguous now: the reply lists the codes, nothing is decided.
    r = await sms.text(APPROVER, "YES")
    assert "2 requests are waiting" in r.text
    codes = dict(re.findall(r"(\d{4}): deploybot (deploy\(tag='v[\d.]+')", r.text))
    assert codes[code2.group(1)] == "deploy(tag='v1.2.4'"
    code1 = next(c for c, what in codes.items() if "v1.2.3" in what)
    assert all(r.status == "pending" for r in (await sms.store.thread(first)).requests)

    r = await sms.text(APPROVER, "no 9999")
    assert "No request 9999 is waiting" in r.text

    r = await sms.text(APPROVER, f"Yes {code2.group(1)}")
    assert "Approved: deploy(tag='v1.2.4', env='staging')" in r.text
    r = await sms.text(APPROVER, f"n {code1} not on a Friday")
    assert "Rejected: deploy(tag='v1.2.3', env='production')" in r.text

    v1 = await sms.service.settled(first, "done")
    v2 = await sms.service.settled(second, "done")
    assert [e.outcome for e in v1.events if isinstance(e, ToolResult)] == ["rejected"]
    assert [e.output for e in v2.events if isinstance(e, ToolResult)] == [
        "deployed v1.2.4 to staging"
    ]
    assert sms.deploys() == 1


async def test_two_requests_for_the_same_call_say_who_asked(sms_factory: Factory) -> None:
    sms = await sms_factory()
    for sender in ("alice", "bob"):
        tid = await _rest_thread(sms, sender=sender)
        await sms.service.settled(tid, "awaiting_human")
    r = await sms.text(APPROVER, "YES")
    assert "2 requests are waiting" in r.text
    lines = dict(re.findall(r"(\d{4}): (deploybot deploy\(.*?\), asked by rest:\w+)", r.text))
    assert sorted(what.rsplit(" ", 1)[-1] for what in lines.values()) == ["rest:alice", "rest:bob"]
    r = await sms.text(APPROVER, "no 9999")
    assert "asked by rest:alice" in r.text
    assert "asked by rest:bob" in r.text


async def test_unauthorized_number_is_told_and_nothing_changes(sms_factory: Factory) -> None:
    sms = await sms_factory(
        approvers=(f"sms:{APPROVER}",), notify=(f"sms:{APPROVER}", f"sms:{OTHER}")
    )
    tid = await _rest_thread(sms)
    await sms.service.settled(tid, "awaiting_human")
    assert len(sms.fake.sent_to(OTHER)) == 1

    r = await sms.text(OTHER, "YES")
    assert r.status_code == 200
    assert "not allowed" in r.text
    view = await sms.store.thread(tid)
    assert [r.status for r in view.requests] == ["pending"]
    assert not view.inbox
    assert not [e for e in view.events if isinstance(e, HumanResponse)]

    await sms.text(APPROVER, "YES")
    await sms.service.settled(tid, "done")
    assert sms.deploys() == 1


async def test_duplicate_message_sid_is_handled_once(sms_factory: Factory) -> None:
    sms = await sms_factory()
    tid = await _rest_thread(sms)
    await sms.service.settled(tid, "awaiting_human")

    first = await sms.text(APPROVER, "YES", sid="SM" + "d" * 32)
    again = await sms.text(APPROVER, "YES", sid="SM" + "d" * 32)
    assert "Approved" in first.text
    assert "<Message>" not in again.text  # not "already decided": it is the same text
    await sms.service.settled(tid, "done")
    assert sms.deploys() == 1


async def test_failed_delivery_escalates_to_the_origin(sms_factory: Factory) -> None:
    sms = await sms_factory()
    tid = await _rest_thread(sms)
    await sms.service.settled(tid, "awaiting_human")
    [sent] = sms.fake.messages

    forged = await sms.status(sent["Sid"], "undelivered", "30003", signature="bogus")
    assert forged.status_code == 403
    r = await sms.status(sent["Sid"], "undelivered", "30003")
    assert r.status_code == 204

    await sms.service.wait(tid, approval_to("rest"))
    view = await sms.service.settled(tid, "awaiting_human")
    by_channel = {o.item.to.channel: o for o in view.outbox if o.item.kind == "approval"}
    assert by_channel["sms"].status == "failed"
    assert "undelivered" in (by_channel["sms"].error or "")
    assert by_channel["rest"].status == "sent"
    [failure] = [e for e in view.events if isinstance(e, DeliveryFailed)]
    assert (failure.channel, failure.message) == ("sms", "approval")
    [rerouted] = [e for e in view.events if isinstance(e, Rerouted)]
    assert rerouted.to == "rest:alice"
    assert "undelivered" in rerouted.text
    # The same callback again changes nothing more.
    await sms.status(sent["Sid"], "undelivered", "30003")
    view = await sms.service.settled(tid, "awaiting_human")
    assert len([o for o in view.outbox if o.item.kind == "approval"]) == 2

    rid = view.requests[0].request.request_id
    r = await sms.service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert r.status_code == 200
    await sms.service.settled(tid, "done")
    assert sms.deploys() == 1


async def test_sms_thread_asks_and_answers_on_the_phone(sms_factory: Factory) -> None:
    sms = await sms_factory(approvers=(f"sms:{TALKER}",), notify=())
    await sms.text(TALKER, "please deploy v1.2.3 to staging")
    tid = thread_id_for("sms", f"{OURS}:{TALKER}")
    await sms.service.settled(tid, "awaiting_human")
    [ask] = sms.fake.sent_to(TALKER)
    assert ask.startswith("deploybot: approve deploy(tag=v1.2.3, env=staging)?")

    r = await sms.text(TALKER, "Y")
    assert "Approved" in r.text
    view = await sms.service.settled(tid, "done")
    assert sms.fake.sent_to(TALKER)[-1] == "Done: deployed v1.2.3 to staging"
    assert [o.item.kind for o in view.outbox] == ["approval", "final"]
    assert sms.deploys() == 1


async def test_a_yes_for_a_withdrawn_approval_is_no_longer_pending(
    sms_factory: Factory, fake_llm: FakeOpenAI
) -> None:
    fake_llm.script(
        step("deploy", tag="v1.2.3", env="production"),
        step("done_for_now", message="Tell me which environment."),
    )
    sms = await sms_factory()
    tid = await _rest_thread(sms)
    await sms.service.settled(tid, "awaiting_human")
    r = await sms.service.api.post(
        f"/v1/threads/{tid}/messages", json={"message": "wait, not production"}
    )
    assert r.status_code == 202
    view = await sms.service.settled(tid, "done")
    assert [r.status for r in view.requests] == ["withdrawn"]

    r = await sms.text(APPROVER, "YES")
    assert "no longer pending: it was withdrawn" in r.text, r.text
    assert sms.deploys() == 0


async def test_yes_all_approves_for_the_rest_of_the_thread(sms_factory: Factory) -> None:
    sms = await sms_factory(policy='[agents.deploybot.tools.deploy.approval]\ngrants = ["thread"]')
    tid = await _rest_thread(sms)
    await sms.service.settled(tid, "awaiting_human")
    [sent] = sms.fake.messages
    assert sent["Body"].endswith(
        "Reply YES, YES ALL for the rest of the thread, or NO and a reason."
    )
    r = await sms.text(APPROVER, "YES ALL")
    assert "Approved for the rest of this thread: deploy(tag='v1.2.3'" in r.text, r.text
    await sms.service.settled(tid, "done")

    r = await sms.service.api.post(
        f"/v1/threads/{tid}/messages", json={"message": "deploy v1.2.4 to production"}
    )
    assert r.status_code == 202, r.text
    await sms.service.wait(tid, lambda v: sum(isinstance(e, ToolResult) for e in v.events) == 2)
    view = await sms.service.settled(tid, "done")
    assert sms.deploys() == 2
    assert len(sms.fake.messages) == 1  # the second call was not asked about
    [granted] = [e for e in view.events if isinstance(e, Granted)]
    assert granted.by == [f"sms:{APPROVER}"]
    assert [e.request_id for e in view.events if isinstance(e, GrantUsed)] == [granted.request_id]


async def test_yes_all_where_the_tool_has_no_grants_decides_nothing(sms_factory: Factory) -> None:
    sms = await sms_factory()
    tid = await _rest_thread(sms)
    await sms.service.settled(tid, "awaiting_human")
    r = await sms.text(APPROVER, "yes all")
    assert "cannot be approved for the rest of the thread" in r.text, r.text
    assert [q.status for q in (await sms.store.thread(tid)).requests] == ["pending"]
    assert sms.deploys() == 0


async def test_a_long_approval_text_keeps_its_budget_and_links_the_thread_page(
    sms_factory: Factory,
) -> None:
    """The text says what to decide first (agent, call, deadline, who asked); the rest is on
    the signed thread page, which opens on a phone with no API token (not the JSON API)."""
    sms = await sms_factory(budget=2)
    why = "deploy v1.2.3 to production " + "because the release notes say so " * 8
    tid = await _rest_thread(sms, why)
    await sms.service.settled(tid, "awaiting_human")
    [body] = sms.fake.sent_to(APPROVER)
    assert segments.segments(body) <= 2
    assert body.startswith("deploybot: approve deploy(tag=v1.2.3, env=production)?\n")
    assert body.endswith("\nReply YES, or NO and a reason.")
    found = re.search(rf"\.\.\. ({PUBLIC}/t/{tid}\?exp=\d+&sig=[\w-]+)\n", body)
    assert found, body
    assert "/v1/" not in body
    page = await sms.service.api.get(found.group(1).removeprefix(PUBLIC))
    assert page.status_code == 200
    assert "because the release notes say so " * 8 in page.text
