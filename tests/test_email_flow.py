"""The email channel end to end: mail in with smtplib, the worker, our mail out to a
capturing SMTP server, and the approver's answer by reply or by one-click link."""

from __future__ import annotations

import smtplib

import aiosmtplib
import httpx
import pytest

from agent.delivery import SendFailed
from channels.app import create_app
from channels.email import router
from channels.rest import rest_channel
from channels.rest.auth import Access
from model.events import DeliveryFailed, FinalAnswer, HumanResponse, ToolResult
from model.ids import thread_id_for
from model.records import OutboxItem
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.conftest import Service
from tests.email_helpers import (
    AGENT,
    ALICE,
    BOB,
    DOMAIN,
    PUBLIC,
    TRUSTED,
    EmailHarness,
    bounce,
    mail,
    passed,
    reply_to,
)
from tests.email_replies import REPLIES, Reply
from tests.fakes.smtp_capture import Captured

pytest_plugins = ("tests.email_fixtures",)

FIRST = thread_id_for("email", "m1@example.com")
REJECT_FORMS = {"gmail-es", "gmail-pt", "apple-zh", "outlook-ja", "thunderbird-pl"}


async def _approval_mail(email: EmailHarness, service: Service) -> Captured:
    await email.send(mail("please deploy v1.2.3 to production"))
    await service.settled(FIRST, "awaiting_human")
    return await email.capture.next()


def _tool_runs(events: list[object]) -> list[ToolResult]:
    return [e for e in events if isinstance(e, ToolResult) and e.tool == "deploy"]


async def test_deploy_approved_by_reply_in_the_same_thread(
    email: EmailHarness, email_service: Service
) -> None:
    approval = await _approval_mail(email, email_service)
    assert approval.rcpt_tos == [ALICE]
    assert approval.mail_from == AGENT
    assert approval.header("Subject") == "Re: Deploy please"
    assert approval.header("In-Reply-To") == "<m1@example.com>"
    assert "<m1@example.com>" in approval.header("References")
    assert approval.header("Auto-Submitted") == "auto-generated"
    assert approval.header("Reply-To").startswith("reply+")
    assert approval.header("Reply-To").endswith(f"@{DOMAIN}")
    assert "deploy(tag='v1.2.3', env='production')" in approval.text
    assert "Reply APPROVE, or REJECT and a reason" in approval.text
    assert f"{PUBLIC}/email/approve/" in approval.text
    assert "Approve</a>" in approval.html

    answer = reply_to(
        approval,
        "APPROVE\n\nOn Tue, Nov 24, 2026 at 10:02 AM Deploybot <deploybot@sb.test> wrote:\n"
        "> Approval needed: deploy(tag='v1.2.3', env='production')\n",
        "m2@example.com",
        **{"Authentication-Results": passed()},
    )
    assert await email.send(answer) == {}  # type: ignore[arg-type]
    view = await email_service.settled(FIRST, "done")

    assert [r.output for r in _tool_runs(view.events)] == ["deployed v1.2.3 to production"]
    [response] = [e for e in view.events if isinstance(e, HumanResponse)]
    assert (response.channel, response.responder, response.verdict) == ("email", ALICE, "approve")
    final = await email.capture.next()
    assert final.rcpt_tos == [ALICE]
    assert final.header("Subject") == "Re: Deploy please"
    # A reply to Alice's APPROVE, carrying the whole chain (RFC 5322 3.6.4): her reply's own
    # References (her first mail, our approval mail) and her reply.
    assert final.header("In-Reply-To") == "<m2@example.com>"
    assert final.header("References").split() == [
        "<m1@example.com>",
        approval.header("Message-ID"),
        "<m2@example.com>",
    ]
    assert approval.header("Date").endswith(" +0000")  # UTC as RFC 5322 writes it, not -0000
    assert final.header("Date").endswith(" +0000")
    assert "deployed v1.2.3 to production" in final.text
    assert [e.text for e in view.events if isinstance(e, FinalAnswer)] == [
        "Done: deployed v1.2.3 to production"
    ]

    # The same reply delivered again changes nothing, and the tool never runs twice.
    assert await email.send(answer) == {}  # type: ignore[arg-type]
    view = await email_service.settled(FIRST, "done")
    assert len(_tool_runs(view.events)) == 1


async def test_reject_by_reply_with_a_reason(email: EmailHarness, email_service: Service) -> None:
    approval = await _approval_mail(email, email_service)
    answer = reply_to(
        approval,
        "REJECT not during the freeze\n\nBest regards,\nAlice\n"
        "________________________________\nFrom: Deploybot <deploybot@sb.test>\n"
        "Sent: Tuesday, November 24, 2026 10:02 AM\nTo: Alice <alice@example.com>\n"
        "Subject: Re: Deploy please\n\nApproval needed\n",
        "m2@example.com",
        **{"Authentication-Results": passed()},
    )
    await email.send(answer)  # type: ignore[arg-type]
    view = await email_service.settled(FIRST, "done")
    assert _tool_runs(view.events)[0].outcome == "rejected"
    final = await email.capture.next()
    assert "Not deploying (rejected by alice@example.com: not during the freeze)" in final.text


@pytest.mark.parametrize(
    "form",
    [r for r in REPLIES if r.id in REJECT_FORMS],
    ids=lambda r: r.id,
)
async def test_a_reject_reason_is_what_was_written(
    email: EmailHarness, email_service: Service, form: Reply
) -> None:
    # The forms the first trials found reaching the model (Spanish and Portuguese Gmail), and
    # one of each other client.
    approval = await _approval_mail(email, email_service)
    answer = reply_to(approval, form.body, "m2@example.com", **{"Authentication-Results": passed()})
    await email.send(answer)  # type: ignore[arg-type]
    view = await email_service.settled(FIRST, "done")
    [response] = [e for e in view.events if isinstance(e, HumanResponse)]
    assert (response.verdict, response.comment) == ("reject", "not during the freeze")
    final = await email.capture.next()
    assert "(rejected by alice@example.com: not during the freeze)" in final.text


@pytest.mark.parametrize(
    ("sender", "auth"),
    [
        (ALICE, None),  # From says Alice; nobody vouched for it
        (ALICE, passed(authserv="mx.evil.test")),  # vouched for by a host we do not trust
        (ALICE, passed(domain="evil.test")),  # DKIM passed, but for another domain
        (BOB, passed()),  # authenticated, allowed to write, but not an approver
        # The trusted host's own header, with a MAIL FROM the forger chose: a split on ";"
        # read a dkim=pass for example.com out of the quoted local part.
        (
            ALICE,
            f'{TRUSTED}; spf=fail smtp.mailfrom="x;dkim=pass header.d=example.com;"@evil.test;'
            " dkim=none",
        ),
    ],
)
async def test_forged_or_unauthorized_approval_is_refused(
    email: EmailHarness, email_service: Service, store: ThreadStore, sender: str, auth: str | None
) -> None:
    approval = await _approval_mail(email, email_service)
    answer = reply_to(approval, "APPROVE", "m2@example.com")
    del answer["From"]  # type: ignore[attr-defined]
    answer["From"] = sender  # type: ignore[index]
    if auth:
        answer["Authentication-Results"] = auth  # type: ignore[index]
    with pytest.raises(smtplib.SMTPDataError) as caught:
        await email.send(answer)  # type: ignore[arg-type]
    assert caught.value.smtp_code == 550
    view = await store.thread(FIRST)
    assert [r.status for r in view.requests] == ["pending"]
    assert not view.inbox
    assert not _tool_runs(view.events)


async def test_an_approver_whose_reply_is_not_vouched_for_is_told_why_once(
    email: EmailHarness, email_service: Service, store: ThreadStore
) -> None:
    """The receiving server is not one we trust: the reply decides nothing, and Alice gets a
    note saying why, with the signed links; a second such reply within the hour, none."""
    approval = await _approval_mail(email, email_service)
    for n in (2, 3):
        answer = reply_to(
            approval,
            "APPROVE",
            f"m{n}@example.com",
            **{"Authentication-Results": passed(authserv="mx.untrusted.test")},
        )
        with pytest.raises(smtplib.SMTPDataError) as caught:
            await email.send(answer)  # type: ignore[arg-type]
        assert caught.value.smtp_code == 550
    note = await email.capture.next()
    assert note.rcpt_tos == [ALICE]
    assert note.header("In-Reply-To") == "<m2@example.com>"
    assert note.header("Subject").startswith("Re: ")
    assert "was not accepted as a decision on deploy(tag='v1.2.3'" in note.text
    assert "EMAIL_TRUSTED_AUTHSERV_IDS" in note.text
    assert f"{PUBLIC}/email/approve/" in note.text
    assert email.capture.received.empty()  # the second refusal sent no second note
    view = await store.thread(FIRST)
    assert [r.status for r in view.requests] == ["pending"]


async def test_approval_needs_the_reply_token(
    email: EmailHarness, email_service: Service, store: ThreadStore
) -> None:
    approval = await _approval_mail(email, email_service)
    answer = reply_to(approval, "APPROVE", "m2@example.com", **{"Authentication-Results": passed()})
    del answer["To"]  # type: ignore[attr-defined]
    answer["To"] = AGENT  # type: ignore[index]
    with pytest.raises(smtplib.SMTPDataError) as caught:
        await email.send(answer)  # type: ignore[arg-type]
    assert caught.value.smtp_code == 550
    assert [r.status for r in (await store.thread(FIRST)).requests] == ["pending"]


async def test_deploy_approved_by_link(
    email: EmailHarness, email_service: Service, store: ThreadStore
) -> None:
    approval = await _approval_mail(email, email_service)
    links = [line.split(": ", 1)[1] for line in approval.text.splitlines() if ": http" in line]
    [thread_page] = [link for link in links if "/t/" in link]
    approve, reject = (link for link in links if "/email/approve/" in link)
    # The mail says enough to decide: the call laid out, who asked and why, quorum, the page.
    assert "    env: production" in approval.text
    assert 'Asked by email:alice@example.com: "please deploy' in approval.text
    assert "Agent deploybot, thread " in approval.text
    assert "Approvals given: 0 of 1" in approval.text
    port = ChannelPort(store, OutboxStore(store.redis))
    rest = rest_channel(port, email.registry, Access())
    app = create_app(store.redis, email.registry, access=Access(), channels=[rest])
    app.include_router(router(port, email.parts.keyring, store.redis))
    path = approve.removeprefix(PUBLIC)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
        shown = await web.get(thread_page.removeprefix(PUBLIC))
        assert shown.status_code == 200
        assert "please deploy" in shown.text
        page = await web.get(path)
        assert page.status_code == 200
        assert "deploy(tag=&#x27;v1.2.3&#x27;, env=&#x27;production&#x27;)" in page.text
        assert [r.status for r in (await store.thread(FIRST)).requests] == ["pending"]

        assert (await web.post(path)).status_code == 200
        view = await email_service.settled(FIRST, "done")
        assert len(_tool_runs(view.events)) == 1
        [response] = [e for e in view.events if isinstance(e, HumanResponse)]
        assert (response.channel, response.responder) == ("email", ALICE)

        again = await web.post(path)
        assert again.status_code == 409
        other = await web.post(reject.removeprefix(PUBLIC), data={"comment": "too late"})
        assert other.status_code == 409
        # The page says what became of it, not only that it was decided.
        assert f"was already approved by email:{ALICE} at " in other.text
        forged = await web.post(path[:-3] + "AAA")
        assert forged.status_code == 404
    final = await email.capture.next()
    assert "deployed v1.2.3 to production" in final.text
    assert len(_tool_runs((await store.thread(FIRST)).events)) == 1


async def test_bounce_of_our_mail_is_recorded_on_its_thread(
    email: EmailHarness, email_service: Service, store: ThreadStore
) -> None:
    approval = await _approval_mail(email, email_service)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=email.port)
    async with client:
        await client.sendmail("", [AGENT], bounce(approval))
    view = await store.thread(FIRST)
    [sent] = view.outbox
    assert sent.status == "failed"
    assert sent.error == "bounced: smtp; 550 5.1.1 mailbox unavailable"
    [failure] = [e for e in [*view.inbox, *view.events] if isinstance(e, DeliveryFailed)]
    assert failure.reason == sent.error
    assert failure.request_id == sent.item.request_id
    assert await store.thread_ids() == [FIRST]  # the bounce started nothing


async def test_outbound_failures_are_transient_or_permanent(
    email: EmailHarness, store: ThreadStore
) -> None:
    await email.send(mail("hello"))
    origin = (await store.thread(FIRST)).meta.origin
    item = OutboxItem(outbox_id="out_x", thread_id=FIRST, kind="final", text="Done.", to=origin)
    sender = email.parts.sender
    assert sender is not None
    email.capture.refuse = "451 4.3.0 try again later"
    with pytest.raises(SendFailed) as transient:
        await sender.send(item)
    assert transient.value.transient
    email.capture.refuse = "554 5.7.1 rejected"
    with pytest.raises(SendFailed) as permanent:
        await sender.send(item)
    assert not permanent.value.transient
    email.capture.refuse = None
    first = await sender.send(item)
    again = await sender.send(item)  # a resend after an unknown outcome: the same Message-ID
    assert first.provider_id == again.provider_id == f"out_x.{FIRST}@{DOMAIN}"
    assert (await email.capture.next()).header("Message-ID") == f"<{first.provider_id}>"
    await email.capture.stop()
    with pytest.raises(SendFailed) as down:
        await sender.send(item)
    assert down.value.transient


async def test_question_answered_by_reply_and_reply_to_our_mail(
    email: EmailHarness, email_service: Service, store: ThreadStore
) -> None:
    await email.send(mail("hello there"))
    await email_service.settled(FIRST, "awaiting_human")
    question = await email.capture.next()
    assert "What would you like me to do?" in question.text
    assert "APPROVE" not in question.text
    # Bob (allowed by domain) answers from his own client, to the agent's address: the
    # In-Reply-To of our mail finds the thread and the question it asked.
    answer = reply_to(question, "nothing for now", "m2@example.com")
    del answer["To"], answer["From"]  # type: ignore[attr-defined]
    answer["To"], answer["From"] = AGENT, BOB  # type: ignore[index]
    await email.send(answer)  # type: ignore[arg-type]
    view = await email_service.settled(FIRST, "done")
    [response] = [e for e in view.events if isinstance(e, HumanResponse)]
    assert (response.responder, response.answer) == (BOB, "nothing for now")
    final = await email.capture.next()
    assert "Thanks, noted." in final.text
    assert final.header("In-Reply-To") == "<m2@example.com>"
    assert final.header("References").split() == [
        "<m1@example.com>",
        question.header("Message-ID"),
        "<m2@example.com>",
    ]
