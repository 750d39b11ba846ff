"""An approver who is not the requester: the approval mail goes to them, the answer to the
requester."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from agent.config import Registry
from model.events import HumanResponse, ToolResult
from model.ids import thread_id_for
from tests.conftest import Service
from tests.email_helpers import (
    ALICE,
    BOB,
    EmailHarness,
    approved_by_bob,
    mail,
    passed,
)

pytest_plugins = ("tests.email_fixtures",)


@pytest.fixture
def email_registry(tmp_path: Path) -> Registry:
    """Deploys are approved by Bob, and their approval requests go to him."""
    return approved_by_bob(tmp_path)


async def test_approval_goes_to_the_approver(email: EmailHarness, email_service: Service) -> None:
    tid = thread_id_for("email", "m1@example.com")
    await email.send(mail("please deploy v1.2.3 to production"))
    await email_service.settled(tid, "awaiting_human")
    first, second = await email.capture.next(), await email.capture.next()
    approval, notice = (first, second) if first.rcpt_tos == [BOB] else (second, first)
    assert approval.rcpt_tos == [BOB]
    # Alice, who asked, hears that the approval went to someone else.
    assert notice.rcpt_tos == [ALICE]
    assert "Waiting for approval from email:bob@example.com" in notice.text
    assert "Reply APPROVE" in approval.text
    assert "Approve: https://" in approval.text
    # Bob was not on the thread, but the mail still belongs to it (its References).
    assert approval.header("References") == "<m1@example.com>"

    # Alice, who asked, may not approve with Bob's reply address, even authenticated.
    forwarded = mail(
        "APPROVE",
        to=approval.header("Reply-To"),
        message_id="m2@example.com",
        headers={"Authentication-Results": passed()},
    )
    with pytest.raises(smtplib.SMTPDataError) as caught:
        await email.send(forwarded)
    assert caught.value.smtp_code == 550
    answer = mail(
        "APPROVE\n\n-- \nBob",
        sender=BOB,
        to=approval.header("Reply-To"),
        message_id="m3@example.com",
        headers={"Authentication-Results": passed(), "In-Reply-To": approval.header("Message-ID")},
    )
    await email.send(answer)
    view = await email_service.settled(tid, "done")
    responses = [e for e in view.events if isinstance(e, HumanResponse)]
    assert [(r.responder, r.verdict) for r in responses] == [(BOB, "approve")]
    runs = [e for e in view.events if isinstance(e, ToolResult) and e.tool == "deploy"]
    assert [r.output for r in runs] == ["deployed v1.2.3 to production"]
    final = await email.capture.next()
    assert final.rcpt_tos == [ALICE]


async def test_a_rest_thread_is_approved_by_mail(
    email: EmailHarness, email_service: Service
) -> None:
    r = await email_service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to staging", "sender": "ci"}
    )
    tid = r.json()["thread_id"]
    await email_service.settled(tid, "awaiting_human")
    approval = await email.capture.next()
    assert approval.rcpt_tos == [BOB]
    assert approval.header("From") == "Deploybot <deploybot@sb.test>"
    assert approval.header("Subject") == "Approval needed: deploy(tag='v1.2.3', env='staging')"
    assert approval.header("In-Reply-To") == ""
    answer = mail(
        "approve",
        sender=BOB,
        to=approval.header("Reply-To"),
        subject="Re: Approval needed",
        message_id="m9@example.com",
        headers={"Authentication-Results": passed()},
    )
    await email.send(answer)
    view = await email_service.settled(tid, "done")
    runs = [e for e in view.events if isinstance(e, ToolResult) and e.tool == "deploy"]
    assert [r.output for r in runs] == ["deployed v1.2.3 to staging"]
    assert [o.item.to.channel for o in view.outbox] == ["email", "rest", "rest"]
