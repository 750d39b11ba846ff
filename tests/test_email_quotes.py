"""Quoted history in eleven languages (channels/email/quotes.py): each mail client's form,
through the real parse of the raw mail and over SMTP to our server, never reaches the thread."""

from __future__ import annotations

import pytest

from channels.email.parse import parse
from model.events import UserMessage
from model.ids import thread_id_for
from store.threads import ThreadStore
from tests.email_helpers import EmailHarness, mail
from tests.email_replies import FRESH, HTML_REPLIES, QUOTED, REPLIES, Reply

pytest_plugins = ("tests.email_fixtures",)

FIRST = thread_id_for("email", "m1@example.com")


def _raw(body: str) -> bytes:
    """The reply as its client sends it: UTF-8, transfer-encoded by the stdlib."""
    return mail(body, subject="Re: Deploy please", message_id="r1@example.com").as_bytes()


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: r.id)
def test_each_clients_quoted_history_is_cut(reply: Reply) -> None:
    parsed = parse(_raw(reply.body))
    assert parsed.reply == FRESH
    assert QUOTED[0] in parsed.text  # the whole body is still kept as text


@pytest.mark.parametrize("html", HTML_REPLIES.values(), ids=HTML_REPLIES.keys())
def test_html_only_replies_are_cut_too(html: str) -> None:
    message = mail("", subject="Re: Deploy please", message_id="r1@example.com")
    message.set_content(html, subtype="html")
    parsed = parse(message.as_bytes())
    assert parsed.reply == FRESH
    assert QUOTED[0] in parsed.text


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        # A date, a time and a colon, but not a line that ends with the verb.
        (
            "Am 24.11.2026 um 09:14 schrieb Bob: bitte warten.",
            "Am 24.11.2026 um 09:14 schrieb Bob: bitte warten.",
        ),
        ("Deploy on 24.11.2026 at 09:14, please.", "Deploy on 24.11.2026 at 09:14, please."),
        # One header-like line is not Outlook's block.
        ("From: the ops team\nplease deploy v1.2.3", "From: the ops team\nplease deploy v1.2.3"),
        # Answers between the quoted lines, below the attribution (Thunderbird, mutt).
        (
            "On 11/24/26 9:14 AM, Deploybot wrote:\n> Which tag?\nv1.2.3\n> Which environment?\n"
            "staging\n",
            "v1.2.3\nstaging",
        ),
        # An attribution inside the quoted history is not the first mark: the reply is above.
        (
            "APPROVE\n\n> On Nov 24, 2026, at 09:14, Alice wrote:\n> > earlier\n",
            "APPROVE",
        ),
    ],
    ids=["verb-not-last", "date-in-prose", "one-label", "inline", "nested"],
)
def test_what_is_not_quoted_history_stays(body: str, reply: str) -> None:
    assert parse(_raw(body)).reply == reply


async def test_replies_over_smtp_store_only_what_was_written(
    email: EmailHarness, store: ThreadStore
) -> None:
    await email.send(mail("please deploy v1.2.3"))
    to = await email.token(FIRST)
    for n, reply in enumerate(REPLIES):
        answer = mail(reply.body, to=to, subject="Re: Deploy please", message_id=f"r{n}@x.test")
        assert await email.send(answer) == {}
    view = await store.thread(FIRST)
    stored = [e.text for e in view.inbox if isinstance(e, UserMessage)][1:]
    assert dict(zip([r.id for r in REPLIES], stored, strict=True)) == {r.id: FRESH for r in REPLIES}
