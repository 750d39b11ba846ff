"""A late answer by mail: an APPROVE / REJECT reply to an approval already settled (decided,
withdrawn, expired) gets a short reply saying what became of it, and starts nothing."""

from __future__ import annotations

from model.events import ToolResult, UserMessage
from model.ids import thread_id_for
from store.threads import ThreadStore
from tests.conftest import Service
from tests.email_helpers import ALICE, EmailHarness, mail, passed, reply_to

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
