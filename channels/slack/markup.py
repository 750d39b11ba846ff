"""Slack's text markup, both ways: readable text from what users wrote, escaped text for what
we post, and long texts cut into pieces that fit Slack's limits."""

from __future__ import annotations

import re

# <@U123>, <@U123|alice>, <#C123|general>, <!here>, <!subteam^S123|@ops>, <https://x|label>
_ANGLE = re.compile(r"<([^<>\n]*)>")

SECTION_LIMIT = 3000
"""Characters in one section block's text."""
MESSAGE_LIMIT = 39_000
"""Characters in one message's ``text`` (Slack truncates past 40,000; a margin for escaping)."""


def normalize(text: str, *, bot_user_id: str | None = None) -> str:
    """A user's Slack text as plain readable text.

    A leading mention of the bot itself is dropped (it only addressed the message to us);
    other mentions become ``@name`` or ``@U123``, channels ``#name``, links ``label (url)``,
    and Slack's three HTML entities are unescaped last, so ``&lt;`` stays a literal ``<``.
    """
    if bot_user_id:
        text = re.sub(rf"^\s*<@{re.escape(bot_user_id)}(\|[^>]*)?>[\s,:]*", "", text)
    text = _ANGLE.sub(_replace, text)
    return unescape(text).strip()


def _replace(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        special = target[1:]
        if special.startswith("subteam^"):
            return label or "@" + special.removeprefix("subteam^")
        if special.startswith("date^"):
            return label or special
        return "@" + special
    if target.startswith("mailto:"):
        return label or target.removeprefix("mailto:")
    if label and label != target:
        return f"{label} ({target})"
    return target


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    """Slack's control characters: the only three it asks apps to escape."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a line break or space when there is one."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", limit // 2, limit)
        if cut < 0:
            cut = rest.rfind(" ", limit // 2, limit)
        if cut < 0:
            cut = limit
        # Never cut an escape like &amp; in half: Slack would show the broken entity.
        amp = rest.rfind("&", max(cut - 5, 0), cut)
        if amp > 0 and ";" not in rest[amp:cut]:
            cut = amp
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest or not pieces:
        pieces.append(rest)
    return pieces
