"""Reading a received mail: pure functions from the raw bytes to a small frozen record.

Standard library parsing with ``policy.default``, headers read as plain text; text/plain
preferred, HTML-only mail turned into text with inscriptis; broken or unknown charsets
decoded leniently instead of failing; attachments listed, never inlined; quoted history cut
at the mail clients' attribution lines and header blocks (quotes.py), then signatures with
mail-parser-reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import getaddresses
from typing import Any

from inscriptis import get_text
from mailparser_reply import EmailMessage as ReplyMessage
from mailparser_reply import EmailReplyParser

from channels.email.noise import Noise, classify
from channels.email.quotes import fresh

_MSGID = re.compile(r"<([^<>\s]+)>")
_FOLD = re.compile(r"\r?\n")


class _TextHeaders(EmailPolicy):
    """``policy.default`` whose headers read as plain text (unfolded, RFC 2047 words
    decoded) instead of header objects. We only ever read headers as strings, and
    building the header registry's objects was most of the cost of a received mail
    (every ``msg.get``, the body's own Content-Type reads included). A value with raw
    non-ASCII bytes, or one the plain path cannot decode, takes the registry's path."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value  # a header object set by code, not parsed
        if name.lower() == "content-disposition":  # is_attachment() reads its object
            return super().header_fetch_parse(name, value)
        try:
            value.encode("ascii")
            unfolded = _FOLD.sub("", value)
            if "=?" not in unfolded:
                return unfolded
            return str(make_header(decode_header(unfolded)))
        except (UnicodeError, LookupError, ValueError, TypeError):
            return super().header_fetch_parse(name, value)


_POLICY = _TextHeaders()
_REPLY_LANGUAGES = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"]).languages


def _reply_patterns() -> dict[str, re.Pattern[str]]:
    """mail-parser-reply's three patterns for our languages. It builds their text again for
    every mail (some thirty joins of its language tables before re's cache is asked): a
    tenth of a mail's SMTP work. Built once here and handed to each message it reads."""
    once = ReplyMessage(text="", languages=list(_REPLY_LANGUAGES))
    return {
        "_header_regex": once.HEADER_REGEX,
        "_disclaimers_regex": once.DISCLAIMERS_REGEX,
        "_signature_regex": once.SIGNATURE_REGEX,
    }


_REPLY_PATTERNS = _reply_patterns()


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int

    def describe(self) -> str:
        return f"{self.name} ({self.content_type}, {self.size} bytes)"


@dataclass(frozen=True)
class ParsedMail:
    """What the channel needs from one received message."""

    message_id: str | None
    """Without angle brackets, as it is compared everywhere (None: the mail had none)."""
    sender: str
    """The From address, lower case ('' if there is none we can read)."""
    subject: str
    text: str
    """The whole body as text."""
    reply: str
    """The body without quoted history and signature: what the human just wrote."""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    noise: Noise | None = None
    """Why this mail must not start or advance a thread (auto-reply, list, bounce...)."""
    auth_results: list[str] = field(default_factory=list)
    """Raw Authentication-Results header values, newest (topmost) first."""

    @property
    def parents(self) -> list[str]:
        """Message-IDs this mail answers, the most direct first."""
        seen: list[str] = []
        for mid in [*self.in_reply_to, *reversed(self.references)]:
            if mid not in seen:
                seen.append(mid)
        return seen

    def content(self) -> str:
        """The event text: the fresh reply, and a line naming any attachments."""
        lines = [self.reply] if self.reply else []
        if self.attachments:
            lines.append("[attached: " + "; ".join(a.describe() for a in self.attachments) + "]")
        return "\n".join(lines)


def message_ids(value: str | None) -> list[str]:
    """The ids in a Message-ID / In-Reply-To / References header, brackets removed."""
    return _MSGID.findall(str(value or ""))


def parse(raw: bytes, envelope_sender: str | None = None) -> ParsedMail:
    """Parse one message. Never raises on odd input: odd parts become empty text."""
    msg = message_from_bytes(raw, policy=_POLICY)
    assert isinstance(msg, EmailMessage)
    ids = message_ids(_header(msg, "Message-ID"))
    text = body_text(msg)
    senders = getaddresses([_header(msg, "From")])  # read once: the noise guard reads it too
    return ParsedMail(
        message_id=ids[0] if ids else None,
        sender=_sender(senders),
        subject=" ".join(_header(msg, "Subject").split()),
        text=text,
        reply=strip_reply(text),
        in_reply_to=message_ids(_header(msg, "In-Reply-To")),
        references=message_ids(_header(msg, "References")),
        attachments=attachments(msg),
        noise=classify(msg, envelope_sender, senders),
        auth_results=[str(v) for v in msg.get_all("Authentication-Results") or []],
    )


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # a header too broken for its parser
        return ""
    return str(value) if value is not None else ""


def _sender(pairs: list[tuple[str, str]]) -> str:
    for _, address in pairs:
        if "@" in address:
            return address.strip().lower()
    return ""


def decode_text(part: Message) -> str:
    """A text part's content, whatever its declared charset says."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, ValueError, AssertionError):
        pass  # unknown charset or undecodable bytes: fall back below
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        # cp1252 maps nearly every byte; what it cannot map becomes U+FFFD
        return payload.decode("cp1252", errors="replace")


def body_text(msg: EmailMessage) -> str:
    """The readable body: text/plain if there is one, else the HTML part as text."""
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    text = decode_text(body)
    if body.get_content_subtype() == "html":
        text = get_text(text)
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()


def attachments(msg: EmailMessage) -> list[Attachment]:
    found = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        found.append(
            Attachment(
                name=part.get_filename() or "unnamed",
                content_type=part.get_content_type(),
                size=len(payload) if isinstance(payload, bytes) else 0,
            )
        )
    return found


def strip_reply(text: str) -> str:
    """What the human wrote above (or below) the quoted history, without their signature.

    Our table of the clients' attribution lines and header blocks cuts first (quotes.py);
    mail-parser-reply then takes off signatures, and cuts at any form our table lacks.
    """
    if not text:
        return ""
    mine = fresh(text)
    # What EmailReplyParser.read does, with the patterns built once (a new list each time:
    # the message adds to the one it is given).
    message = ReplyMessage(text=mine, languages=list(_REPLY_LANGUAGES), **_REPLY_PATTERNS)
    replies = message.read().replies
    return fresh(replies[0].body if replies else mine)
