"""A late answer by mail: an APPROVE / REJECT reply to an approval already settled (decided,
withdrawn, expired) gets a short reply saying what became of it, and starts nothing."""

from __future__ import annotations

import httpx

from channels.app import create_app
from channels.email import router
from channels.rest.auth import Access
from model.events import ToolResult, UserMessage
from model.ids import thread_id_for
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.conftest import Service
from tests.email_helpers import ALICE, PUBLIC, EmailHarness, mail, passed, reply_to
from tests.fakes.openai_server import FakeOpenAI, step

pytest_plugins = ("tests.email_fixtures",)

FIRST = thread_id_for("email", "m1@example.com")
AUTH = {"Authentication-Results": passed()}


async def test_a_second_approve_by_mail_hears_it_was_already_approved(
    email: EmailHarness, email_service: Service, store: ThreadStore
) -> None:
    await email.send(mail("please deploy v1.2.3 to production"))
    await email_service.settled(FIRST, "awaiting_human")
    approval = await email.capture.next()
    await email.send(reply_to(approval, "APPROVE", "m2@example.com", **AUTH))  # type: ignore[arg-type]
    view = await email_service.settled(FIRST, "done")
    final = await email.capture.next()
    assert "deployed v1.2.3 to production" in final.text
    [approved] = [e for e in view.events if e.type == "approved"]
    events = len(view.events)

    # Alice answers the approval mail again (another device, a late read).
    await email.send(reply_to(approval, "APPROVE", "m3@example.com", **AUTH))  # type: ignore[arg-type]
    note = await email.capture.next()
    assert note.rcpt_tos == [ALICE]
    assert note.header("In-Reply-To") == "<m3@example.com>"
    assert (
        f"deploy(tag='v1.2.3', env='production') was already approved by email:{ALICE} at "
        f"{approved.at:%H:%M} UTC. Nothing was changed."
    ) in note.text
    # Nothing stored, nothing run, no conversation started.
    view = await email_service.settled(FIRST, "done")
    assert len(view.events) == events
    assert not view.inbox
    assert [e.text for e in view.events if isinstance(e, UserMessage)] == [
        "please deploy v1.2.3 to production"
    ]
    assert len([e for e in view.events if isinstance(e, ToolResult)]) == 1
    # A third within the hour sends no second note.
    await email.send(reply_to(approval, "APPROVE", "m4@example.com", **AUTH))  # type: ignore[arg-type]
    assert email.capture.received.empty()


async def test_a_withdrawn_approval_mail_is_no_longer_pending_by_link_or_reply(
    email: EmailHarness, email_service: Service, store: ThreadStore, fake_llm: FakeOpenAI
) -> None:
    fake_llm.script(
        step("deploy", tag="v1.2.3", env="production"),
        step("deploy", tag="v1.2.3", env="staging"),
    )
    await email.send(mail("please deploy v1.2.3 to production"))
    await email_service.settled(FIRST, "awaiting_human")
    approval = await email.capture.next()
    links = [line.split(": ", 1)[1] for line in approval.text.splitlines() if ": http" in line]
    approve = next(link for link in links if "/email/approve/" in link)

    # Alice changes her mind in the thread before anyone decided: the approval is withdrawn.
    await email.send(reply_to(approval, "wait, make it staging instead", "m2@example.com"))  # type: ignore[arg-type]

    def asked_again(v: object) -> bool:
        return len(v.requests) == 2  # type: ignore[attr-defined]

    await email_service.wait(FIRST, asked_again)
    view = await email_service.settled(FIRST, "awaiting_human")
    assert [r.status for r in view.requests] == ["withdrawn", "pending"]
    await email.capture.next()  # the new approval, for staging

    port = ChannelPort(store, OutboxStore(store.redis))
    app = create_app(store.redis, email.registry, access=Access(), channels=[])
    app.include_router(router(port, email.parts.keyring, store.redis))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
        for answer in (
            await web.get(approve.removeprefix(PUBLIC)),
            await web.post(approve.removeprefix(PUBLIC)),
        ):
            assert answer.status_code == 409
            assert "No longer pending" in answer.text
            assert "it was withdrawn (the request changed)" in answer.text

    # An APPROVE reply to the old mail hears the same, and decides nothing.
    await email.send(reply_to(approval, "APPROVE", "m3@example.com", **AUTH))  # type: ignore[arg-type]
    note = await email.capture.next()
    assert "is no longer pending: it was withdrawn (the request changed)." in note.text
    view = await email_service.settled(FIRST, "awaiting_human")
    assert [r.status for r in view.requests] == ["withdrawn", "pending"]
    assert not [e for e in view.events if isinstance(e, ToolResult) and e.outcome == "ok"]
