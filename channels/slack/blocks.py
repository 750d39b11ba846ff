"""Block Kit for what we post: plain messages, approval requests with buttons, the decided
version of an approval (buttons gone), and the modal that asks why a call is rejected."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.slack import editing
from channels.slack.markup import SECTION_LIMIT, escape, split
from channels.slack.payloads import (
    APPROVE,
    REASON_BLOCK,
    REASON_INPUT,
    REASON_VIEW,
    REJECT,
    MessageRef,
)

Block = dict[str, Any]

MAX_ARGUMENT = 500
"""Characters of one argument's value shown on an approval message."""


@dataclass(frozen=True)
class Decided:
    """Who decided an approval request, how and when (shown in place of the buttons)."""

    decision: str
    user: str
    at: datetime
    comment: str | None = None
    channel: str = "slack"
    """Where the decision was made; a Slack user is shown as a mention."""
    name: str | None = None
    """The Slack user's display name (users.info), shown before the mention."""


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def sections(escaped: str) -> list[Block]:
    """Already escaped text as section blocks, each within Slack's 3,000 characters."""
    return [_section(piece) for piece in split(escaped, SECTION_LIMIT) if piece]


def _value(value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(shown) > MAX_ARGUMENT:
        shown = shown[:MAX_ARGUMENT] + "…"
    return escape(shown).replace("`", "'")


def approval_head(tool: str, arguments: Mapping[str, Any]) -> list[Block]:
    """The tool and its arguments, one per line, readable by a human deciding on them."""
    lines = [f"*Approval needed:* `{escape(tool)}`"]
    lines += [f"• *{escape(name)}:* `{_value(value)}`" for name, value in arguments.items()]
    return sections("\n".join(lines))


def approval(
    request_id: str,
    tool: str,
    arguments: Mapping[str, Any],
    editable: Sequence[str] = (),
    grants: Sequence[str] = (),
) -> list[Block]:
    """An approval request with Approve and Reject buttons; both carry the request id.
    ``editable`` / ``grants`` (the policy's) add Edit and "Approve for this thread"."""
    return [
        *approval_head(tool, arguments),
        {
            "type": "actions",
            "block_id": "sb_decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": request_id,
                },
                *editing.buttons(request_id, editable, grants),
                {
                    "type": "button",
                    "action_id": REJECT,
                    "text": {"type": "plain_text", "text": "Reject"},
                    "style": "danger",
                    "value": request_id,
                },
            ],
        },
        _context(f"Request `{escape(request_id)}`: only configured approvers can decide."),
    ]


def decided_text(decided: Decided) -> str:
    """``Approved by <@U1> at 2026-11-24 09:58 UTC``, rendered in the reader's time zone."""
    verb = "Approved" if decided.decision == "approve" else "Rejected"
    epoch = int(decided.at.timestamp())
    fallback = decided.at.strftime("%Y-%m-%d %H:%M UTC")
    when = f"<!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"
    who = f"<@{escape(decided.user)}>"
    if decided.name:
        who = f"{escape(decided.name)} ({who})"
    if decided.channel != "slack":
        who = f"{escape(decided.user)} (via {escape(decided.channel)})"
    text = f"{verb} by {who} {when}"
    if decided.comment:
        text += f": {escape(decided.comment[: SECTION_LIMIT - 200])}"
    return text


def decided(tool: str, arguments: Mapping[str, Any], outcome: Decided) -> list[Block]:
    """The approval message after the decision: no buttons, who decided and when."""
    mark = ":white_check_mark:" if outcome.decision == "approve" else ":no_entry:"
    return [*approval_head(tool, arguments), _section(f"{mark} {decided_text(outcome)}")]


def reason_modal(ref: MessageRef, tool: str) -> dict[str, Any]:
    """The modal that asks why; the approval message's whereabouts ride in private_metadata."""
    return {
        "type": "modal",
        "callback_id": REASON_VIEW,
        "private_metadata": ref.model_dump_json(),
        "title": {"type": "plain_text", "text": "Reject"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"Why reject `{escape(tool)}`? The agent reads your reason."),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": 3000,
                },
            },
        ],
    }
