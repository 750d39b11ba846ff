"""Writing our mail: a reply in the human's thread, with our Message-ID, In-Reply-To, the
References chain, ``Re:`` subject, plain text plus a simple HTML part, and the headers that
tell other robots not to answer (Auto-Submitted, RFC 3834; X-Auto-Response-Suppress)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr


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
