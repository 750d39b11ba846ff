"""What a ``channel:address`` in the configuration may look like, checked when it loads.

A typo in an approver (``slak:U1``, ``sms:123``) used to load silently and make the approval
unanswerable: nobody could ever match it. Each channel's address has a known shape, so a
wrong one is refused at start with the shape it should have had.
"""

from __future__ import annotations

import difflib
import re
from typing import Literal

Role = Literal["approver", "notify"]

_SLACK_ID = r"[A-Z0-9]{2,}"
_SHAPES: dict[str, dict[Role, tuple[re.Pattern[str], str]]] = {
    "rest": {
        "approver": (
            re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$"),
            "'*' (anyone holding an API token) or a named token's name",
        ),
    },
    "slack": {
        # Users are U... (W... on Enterprise Grid), user groups S...: who can press a button.
        "approver": (
            re.compile(rf"^[UWS]{_SLACK_ID}$"),
            "a Slack user id (U0123ABCD) or user group id (S0123ABCD)",
        ),
        # Approval requests can also be posted in a channel (C, G private, D direct message).
        "notify": (
            re.compile(rf"^[UWSCGD]{_SLACK_ID}$"),
            "a Slack user (U...), user group (S...) or channel id (C...)",
        ),
    },
    "sms": {
        "approver": (
            re.compile(r"^\+[1-9][0-9]{6,14}$"),
            "a phone number in E.164 form (+15551234567)",
        ),
    },
    "email": {
        "approver": (
            re.compile(r"^[^@\s<>,;:]+@[^@\s<>,;:]+\.[^@\s<>,;:]+$"),
            "an email address (ops@example.com)",
        ),
    },
}
CHANNELS = tuple(sorted(_SHAPES))
"""Channels an address can name."""


def check(text: str, role: Role) -> str:
    """``text`` if it is a valid ``channel:address`` for ``role``; else ValueError saying why."""
    channel, sep, address = text.partition(":")
    channel, address = channel.strip().lower(), address.strip()
    if not sep or not channel or not address:
        raise ValueError(f"{text!r} is not channel:address (e.g. slack:U0123ABCD)")
    shapes = _SHAPES.get(channel)
    if shapes is None:
        close = difflib.get_close_matches(channel, CHANNELS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        known = ", ".join(CHANNELS)
        raise ValueError(f"{text!r}: unknown channel {channel!r} ({hint}channels: {known})")
    pattern, shape = shapes.get(role) or shapes["approver"]
    if not pattern.match(address):
        raise ValueError(f"{text!r}: {channel} needs {shape}")
    return text


def covers(approver: str, address: str) -> bool:
    """Whether ``approver`` (``rest:*`` covers every ``rest:`` address) includes ``address``."""
    channel, _, who = approver.partition(":")
    return approver == address or (who == "*" and address.startswith(f"{channel}:"))


def is_place(address: str) -> bool:
    """A Slack channel (``slack:C...``, ``slack:G...``): a request asked there mentions the
    approvers, so a route may ask in it though nobody decides as the channel."""
    channel, _, where = address.partition(":")
    return channel == "slack" and where[:1] in ("C", "G")
