"""Writing our mail: a reply in the human's thread, with our Message-ID, In-Reply-To, the
References chain, ``Re:`` subject, plain text plus a simple HTML part, and the headers that
tell other robots not to answer (Auto-Submitted, RFC 3834; X-Auto-Response-Suppress)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from model.events import HumanResponse, UserMessage
from model.records import ThreadView

MAX_REFERENCES = 20


@dataclass(frozen=True)
class Outgoing:
    """One mail, ready to be rendered; ids without angle brackets."""

    message_id: str
    sender: tuple[str, str]
    to: str
    reply_to: str
    subject: str
    text: str
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    """(label, url) buttons under the text: the one-click approve / reject links."""


@dataclass(frozen=True)
class ThreadMail:
    """Where a thread stands in the human's mailbox."""

    subject: str
    parent: str | None
    chain: list[str]


def thread_mail(view: ThreadView, channel: str) -> ThreadMail:
    """The subject and Message-ID chain of a thread: what the human sent and what we sent."""
    route = view.meta.origin.route if view.meta.origin.channel == channel else {}
    chain = route.get("references", "").split()
    dated: list[tuple[float, str, bool]] = []
    for event in [*view.events, *view.inbox]:
        # What the humans sent, their answers by reply included: the chain a reply to the
        # latest of them carries (RFC 5322 3.6.4: the parent's References, then the parent).
        if (
            isinstance(event, UserMessage | HumanResponse)
            and event.channel == channel
            and event.message_id
        ):
            dated.append((event.at.timestamp(), event.message_id, True))
    for sent in view.outbox:
        if sent.status == "sent" and sent.item.to.channel == channel and sent.provider_id:
            dated.append((sent.item.created.timestamp(), sent.provider_id, False))
    dated.sort()
    # A mail that came without a Message-ID is known by a digest, which no client could cite.
    dated = [d for d in dated if "@" in d[1]]
    for _, mid, _ in dated:
        if mid not in chain:
            chain.append(mid)
    inbound = [mid for _, mid, theirs in dated if theirs]
    parent = inbound[-1] if inbound else (chain[-1] if chain else None)
    if len(chain) > MAX_REFERENCES:  # keep the first (the thread's root) and the latest
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return ThreadMail(subject=route.get("subject", ""), parent=parent, chain=chain)


def reply_subject(subject: str, fallback: str) -> str:
    subject = subject.strip()
    if not subject:
        return fallback
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def build(mail: Outgoing) -> EmailMessage:
    msg = EmailMessage()
    msg["Message-ID"] = f"<{mail.message_id}>"
    # An aware UTC time is written "+0000"; formatdate(localtime=False) writes "-0000", which
    # RFC 5322 3.3 reserves for "no idea of the local zone".
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["From"] = formataddr(mail.sender)
    msg["To"] = mail.to
    msg["Reply-To"] = mail.reply_to
    msg["Subject"] = mail.subject
    if mail.in_reply_to:
        msg["In-Reply-To"] = f"<{mail.in_reply_to}>"
    if mail.references:
        msg["References"] = " ".join(f"<{r}>" for r in mail.references)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    text = mail.text
    if mail.links:
        text += "\n\n" + "\n".join(f"{label}: {url}" for label, url in mail.links)
    msg.set_content(text + "\n")
    msg.add_alternative(_html(mail), subtype="html")
    return msg


def _html(mail: Outgoing) -> str:
    paragraphs = "".join(
        f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in mail.text.split("\n\n")
    )
    buttons = " ".join(
        f'<a href="{html.escape(url, quote=True)}" style="display:inline-block;padding:8px 16px;'
        f'margin-right:8px;border:1px solid #888;border-radius:4px;text-decoration:none">'
        f"{html.escape(label)}</a>"
        for label, url in mail.links
    )
    return (
        '<!DOCTYPE html><html><body style="font-family:sans-serif">'
        f"{paragraphs}{f'<p>{buttons}</p>' if buttons else ''}</body></html>\n"
    )
