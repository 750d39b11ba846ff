"""The part of a Slack approval message that says enough to decide: who asked and what they
wrote, which agent and thread, approvals given against needed, the deadline, the link to the
thread page, and an @-mention of the people asked (so they see it without watching)."""

from __future__ import annotations

from channels.slack.blocks import Block
from channels.slack.markup import escape
from model.records import ApprovalBrief, OutboxItem


def mentions(brief: ApprovalBrief) -> str:
    """``<@U0123> <!subteam^S0456>``: Slack's own mention syntax, from ids we configured."""
    return " ".join(
        f"<!subteam^{escape(i)}>" if i.startswith("S") else f"<@{escape(i)}>" for i in brief.mention
    )


def _who(requester: str) -> str:
    channel, _, address = requester.partition(":")
    if channel == "slack" and address.startswith(("U", "W")):
        return f"<@{escape(address)}>"
    return escape(requester)


def blocks(item: OutboxItem, link: str | None) -> list[Block]:
    """Blocks to go between the call and the buttons (none for an item without a brief)."""
    brief = item.brief
    if brief is None:
        return []
    lines = [escape(note) for note in item.text.split("\n")[1:] if note.strip()]
    who = _who(brief.requester) if brief.requester else "someone"
    lines.append(f"*Asked by* {who} *in* {escape(brief.agent)}")
    if brief.said:
        lines.append("> " + escape(brief.said))
    facts = [f"*Approvals:* {brief.approvals_given} of {brief.approvals_needed}"]
    if brief.deadline is not None:
        epoch = int(brief.deadline.timestamp())
        fallback = brief.deadline.strftime("%Y-%m-%d %H:%M UTC")
        facts.append(f"*Decide by* <!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>")
    if link:
        facts.append(f"<{link}|Open the thread>")
    lines.append(" · ".join(facts))
    if brief.mention:
        lines.append(f"Asking {mentions(brief)}")
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]


def fallback_text(item: OutboxItem) -> str:
    """The message's ``text`` (notifications, screen readers): mentions first, so they ping."""
    text = escape(item.text)
    return f"{mentions(item.brief)} {text}" if item.brief and item.brief.mention else text
