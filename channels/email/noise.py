"""The loop and noise guard: which mail was not written by a person to us (RFC 3834 and kin).

Auto-replies, out-of-office notices, list and bulk mail, bounces and delivery reports never
start or advance a thread; answering any of them is how mail loops begin. A bounce of our own
message is the one kind the channel acts on: it is recorded on the thread it belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_string, policy
from email.message import Message
from email.utils import getaddresses
from typing import Literal

_MSGID = re.compile(r"<([^<>\s]+)>")
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)? ?reply|autoreply|out of (the )?office|auto:|abwesenheitsnotiz)", re.I
)


@dataclass(frozen=True)
class Noise:
    kind: Literal["auto_reply", "bulk", "bounce"]
    reason: str
    bounced: list[str] = field(default_factory=list)
    """Message-IDs of the returned message (a bounce only)."""
    failed: bool = False
    """A bounce reporting that delivery failed for good (not a delay or a success notice)."""
    diagnostic: str = ""


def _get(msg: Message, name: str) -> str:
    try:
        return str(msg.get(name) or "").strip()
    except (ValueError, IndexError, TypeError):
        return ""


def classify(
    msg: Message, envelope_sender: str | None, senders: list[tuple[str, str]] | None = None
) -> Noise | None:
    """Why this message is not a person writing to us, or None when it is.
    ``senders``: the From header's (name, address) pairs, when the caller has them."""
    if senders is None:
        senders = getaddresses([_get(msg, "From")])
    sender = " ".join(a for _, a in senders).lower()
    content_type = msg.get_content_type()
    null_sender = envelope_sender is not None and envelope_sender.strip("<> ") == ""
    daemon = any(d in sender.split("@")[0] for d in _DAEMONS) if sender else False
    if content_type == "multipart/report" or null_sender or daemon:
        why = "delivery report" if content_type == "multipart/report" else "bounce"
        if null_sender:
            why += " (null sender)"
        return _bounce(msg, why)
    auto = _get(msg, "Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        return Noise("auto_reply", f"Auto-Submitted: {auto}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if _get(msg, name):
            return Noise("auto_reply", name)
    precedence = _get(msg, "Precedence").lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return Noise("bulk", f"Precedence: {precedence}")
    if _get(msg, "List-Id") or _get(msg, "List-Unsubscribe"):
        return Noise("bulk", "mailing list")
    if _AUTO_SUBJECT.match(_get(msg, "Subject")):
        return Noise("auto_reply", "auto-reply subject")
    return None


def _bounce(msg: Message, why: str) -> Noise:
    returned: list[str] = []
    actions: list[str] = []
    diagnostic = ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "text/rfc822-headers"):
            returned += _returned_ids(part)
        elif ctype in ("message/delivery-status", "message/global-delivery-status"):
            for block in _status_blocks(part):
                action = _get(block, "Action").lower()
                if action:
                    actions.append(action)
                    diagnostic = (
                        diagnostic or _get(block, "Diagnostic-Code") or _get(block, "Status")
                    )
    # Without a returned copy, a bounce usually still names what it answers.
    returned += _MSGID.findall(_get(msg, "In-Reply-To") + " " + _get(msg, "References"))
    failed = "failed" in actions if actions else True
    unique = list(dict.fromkeys(returned))
    return Noise("bounce", why, bounced=unique, failed=failed, diagnostic=diagnostic[:300])


def _returned_ids(part: Message) -> list[str]:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return _MSGID.findall(_get(inner[0], "Message-ID"))
        return []
    payload = part.get_payload(decode=True)
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    headers = message_from_string(text, policy=policy.default)
    return _MSGID.findall(_get(headers, "Message-ID"))


def _status_blocks(part: Message) -> list[Message]:
    """The per-recipient blocks of a delivery-status part (the stdlib parses them as headers)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = str(payload)
    return [
        message_from_string(b.strip() + "\n", policy=policy.default) for b in text.split("\n\n")
    ]
