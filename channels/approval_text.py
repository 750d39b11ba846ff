"""An approval request as plain text, for channels without rich layout (email, SMS).

The call is laid out one argument per line, then who asked and what they wrote, which agent
and thread, approvals given against needed, the deadline, and the link to the thread page.
An item stored before briefs existed (or a notice) is shown as it was written.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from model.records import ApprovalBrief, OutboxItem

MAX_VALUE = 200
"""Characters of one argument's value in a text (the page has all of it)."""


def value(raw: Any, limit: int = MAX_VALUE) -> str:
    shown = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def notes(item: OutboxItem) -> list[str]:
    """What the run loop added under the call (a stage, a reminder, why it was moved)."""
    return [line for line in item.text.split("\n")[1:] if line.strip()]


def counted(brief: ApprovalBrief) -> str:
    return f"{brief.approvals_given} of {brief.approvals_needed} approvals given"


def email_text(item: OutboxItem, link: str | None) -> str:
    """The body of an approval mail, before the reply hint and the one-click links."""
    brief = item.brief
    if brief is None or item.tool is None:
        return item.text + (f"\n\nThe thread: {link}" if link else "")
    # The call's one-line form first (mail clients show it as the preview), then laid out.
    lines = [item.text.split("\n")[0], ""]
    lines += [f"    {k}: {value(v)}" for k, v in (item.arguments or {}).items()]
    lines += notes(item)
    lines.append("")
    who = brief.requester or "someone"
    lines.append(f'Asked by {who}: "{brief.said}"' if brief.said else f"Asked by {who}")
    lines.append(f"Agent {brief.agent}, thread {item.thread_id}")
    lines.append(f"Approvals given: {brief.approvals_given} of {brief.approvals_needed}")
    if brief.deadline is not None:
        lines.append(f"Decide by {when(brief.deadline)}")
    if link:
        lines.append(f"The whole thread (read-only): {link}")
    return "\n".join(lines)


def sms_text(item: OutboxItem) -> str:
    """An approval as a text: the call and who asked first (the link carries the rest)."""
    brief = item.brief
    if brief is None or item.tool is None:
        return item.text
    args = ", ".join(f"{k}={value(v, 60)}" for k, v in (item.arguments or {}).items())
    parts = [f"{brief.agent}: approve {item.tool}({args})?", *notes(item)]
    if brief.approvals_needed > 1:
        parts.append(counted(brief))
    if brief.deadline is not None:
        parts.append(f"Decide by {brief.deadline:%b %d %H:%M} UTC")
    # Last, because a long message is cut from the end and the page has it whole.
    if brief.requester:
        parts.append(f"Asked by {brief.requester}" + (f': "{brief.said}"' if brief.said else ""))
    return "\n".join(parts)
