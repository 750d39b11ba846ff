"""What Slack sends, as small frozen records: pure functions of the payload, no I/O.

Anything we do not act on comes back as None (a bot's message, an edit, a deletion, a plain
channel message outside a thread we are in), so the caller just acknowledges it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from channels.slack.markup import normalize

MAX_TEXT = 20_000
"""Characters of a human's message we keep (the REST API's limit too)."""

# Message subtypes that are still a human writing; every other subtype (bot_message,
# message_changed, message_deleted, channel_join...) is not something to answer.
_HUMAN_SUBTYPES = (None, "file_share", "thread_broadcast")

APPROVE = "sb_approve"
REJECT = "sb_reject"
APPROVE_THREAD = "sb_approve_thread"
"""Approve, and grant the tool for the rest of the thread (the policy's ``grants``)."""
EDIT = "sb_edit"
"""Open the edit modal (the policy's ``editable``)."""
EDIT_VIEW = "sb_edit_view"
REASON_VIEW = "sb_reject_reason"
REASON_BLOCK = "reason"
_BUTTONS = (APPROVE, REJECT, APPROVE_THREAD, EDIT)
REASON_INPUT = "reason_input"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MessageIn(_Frozen):
    """A human's message to the bot: a mention, a direct message, or a reply in a thread."""

    team: str
    channel: str
    user: str
    text: str
    ts: str
    thread_ts: str
    """The Slack thread's root: the message's own ts when it starts one."""
    starts: bool
    """May this message start a thread (a mention or a DM), or only continue a known one?"""
    direct: bool = False
    """Written in a DM with the app."""
    assistant: bool = False
    """Written in an assistant thread (Slack's AI-app surface: the event carries
    ``assistant_thread``), where a thread status shows that the agent is on it."""

    @property
    def conversation(self) -> str:
        """The key of the agent thread: team, channel and the Slack thread's root."""
        return f"{self.team}:{self.channel}:{self.thread_ts}"

    @property
    def is_reply(self) -> bool:
        return self.thread_ts != self.ts


class Click(_Frozen):
    """Someone pressed Approve or Reject on an approval message."""

    decision: Literal["approve", "reject"]
    request_id: str
    team: str
    user: str
    channel: str
    message_ts: str
    thread_ts: str | None
    trigger_id: str | None
    buttons_shown: bool = True
    """Did the clicked message still show our buttons (not yet updated after a decision)?"""
    grant: bool = False
    """Approve for this thread (``APPROVE_THREAD``)."""
    edit: bool = False
    """Edit, then approve (``EDIT``): opens the edit modal, decides nothing yet."""


class MessageRef(_Frozen):
    """Where the approval message is, carried through the reject modal."""

    request_id: str
    channel: str
    message_ts: str
    thread_ts: str | None = None


class Reason(_Frozen):
    """The reject modal, submitted."""

    ref: MessageRef
    user: str
    reason: str


def message(body: dict[str, Any], bot_user_id: str | None) -> MessageIn | None:
    """An Events API callback as a human's message to us, or None if we do not act on it."""
    event = body.get("event")
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    if kind not in ("app_mention", "message"):
        return None
    if (
        event.get("bot_id")
        or event.get("bot_profile")
        or event.get("subtype") not in _HUMAN_SUBTYPES
    ):
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)):
        return None
    if user == bot_user_id:
        return None
    team = body.get("team_id") or event.get("team")
    if not isinstance(team, str):
        return None
    text = normalize(str(event.get("text") or ""), bot_user_id=bot_user_id)[:MAX_TEXT]
    if not text:
        return None
    direct = event.get("channel_type") == "im"
    thread_ts = event.get("thread_ts")
    if kind == "message" and not direct and not isinstance(thread_ts, str):
        return None  # a channel message that is no reply: only a mention (app_mention) starts
    return MessageIn(
        team=team,
        channel=channel,
        user=user,
        text=text,
        ts=ts,
        thread_ts=thread_ts if isinstance(thread_ts, str) else ts,
        starts=kind == "app_mention" or direct,
        direct=direct,
        assistant=direct and isinstance(thread_ts, str) and "assistant_thread" in event,
    )


class Edit(_Frozen):
    """A human edited one of their messages (a ``message_changed`` event)."""

    team: str
    channel: str
    user: str
    ts: str
    """The edited message's own ts."""
    thread_ts: str
    text: str
    event_id: str
    """The edit's event id: Slack's retries of it share it, a later edit has its own."""

    @property
    def conversation(self) -> str:
        return f"{self.team}:{self.channel}:{self.thread_ts}"


def edit(body: dict[str, Any], bot_user_id: str | None) -> Edit | None:
    """A ``message_changed`` event as a human's edit, or None (a bot's update, an unfurl)."""
    event = body.get("event")
    if not isinstance(event, dict) or event.get("subtype") != "message_changed":
        return None
    new, old = event.get("message"), event.get("previous_message")
    if not isinstance(new, dict) or new.get("bot_id") or new.get("subtype"):
        return None
    user, ts, channel = new.get("user"), new.get("ts"), event.get("channel")
    team, event_id = body.get("team_id") or new.get("team"), body.get("event_id")
    fields = (user, ts, channel, team, event_id)
    if not all(isinstance(f, str) and f for f in fields) or user == bot_user_id:
        return None
    text = normalize(str(new.get("text") or ""), bot_user_id=bot_user_id)[:MAX_TEXT]
    before = normalize(str((old or {}).get("text") or ""), bot_user_id=bot_user_id)
    if not text or text == before[:MAX_TEXT]:
        return None  # an unfurl or an attachment change: the words are the same
    thread_ts = new.get("thread_ts")
    return Edit(
        team=team,
        channel=channel,
        user=user,
        ts=ts,
        thread_ts=thread_ts if isinstance(thread_ts, str) else ts,
        text=text,
        event_id=event_id,
    )


def click(body: dict[str, Any]) -> Click | None:
    """A block_actions payload from one of our approval buttons, or None."""
    actions = body.get("actions") or []
    if not actions or not isinstance(actions[0], dict):
        return None
    action = actions[0]
    action_id = action.get("action_id")
    if action_id not in _BUTTONS:
        return None
    container = body.get("container") or {}
    message = body.get("message") or {}
    user = (body.get("user") or {}).get("id")
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or message.get("ts")
    rid = action.get("value")
    fields = (user, team, channel, ts, rid)
    if not all(isinstance(f, str) and f for f in fields):
        return None
    return Click(
        decision="reject" if action_id == REJECT else "approve",
        request_id=rid,
        team=team,
        user=user,
        channel=channel,
        message_ts=ts,
        thread_ts=container.get("thread_ts") or message.get("thread_ts"),
        trigger_id=body.get("trigger_id"),
        grant=action_id == APPROVE_THREAD,
        edit=action_id == EDIT,
        buttons_shown=any(
            isinstance(e, dict) and e.get("action_id") in _BUTTONS
            for b in message.get("blocks") or []
            if isinstance(b, dict) and b.get("type") == "actions"
            for e in b.get("elements") or []
        ),
    )


def reason(body: dict[str, Any]) -> Reason | None:
    """A view_submission of the reject modal, or None if it is not ours or is malformed."""
    view = body.get("view") or {}
    user = (body.get("user") or {}).get("id")
    try:
        ref = MessageRef.model_validate(json.loads(view.get("private_metadata") or ""))
        value = view["state"]["values"][REASON_BLOCK][REASON_INPUT]["value"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(user, str) or not isinstance(value, str) or not value.strip():
        return None
    # Plain-text inputs come back as typed, without Slack's escaping.
    return Reason(ref=ref, user=user, reason=value.strip()[:MAX_TEXT])
