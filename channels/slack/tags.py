"""Outbox ids on Slack messages: each post carries its item's id, so a repeat can look first.

Slack has no idempotency key for chat.postMessage. Each message we post carries its outbox id
and part number in Slack's message ``metadata``; before an attempt whose predecessor's outcome
is unknown (a dropped connection, a crash mid-call), the sender reads the thread
(conversations.replies) or, for a top-level post, the channel's recent history
(conversations.history) for those tags, and posts only what is not there yet.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from model.records import OutboxItem

EVENT_TYPE = "switchboard_outbox"
"""Our metadata's event_type; Slack shows it to apps that read metadata, nobody else."""
HISTORY_SLACK_S = 300
"""How far before an item's creation the channel history is read (clock skew, queueing)."""
PAGE = 200
"""Messages per page read (Slack's maximum for conversations.replies / history is 1000)."""
PAGES = 5
"""At most this many pages per look-up: a busy channel's older posts cannot be ours."""


def metadata(outbox_id: str, part: int) -> dict[str, Any]:
    """The tag of part ``part`` (from 0) of one outbox item."""
    return {"event_type": EVENT_TYPE, "event_payload": {"outbox_id": outbox_id, "part": part}}


def _part(message: dict[str, Any], outbox_id: str) -> int | None:
    meta = message.get("metadata")
    if not isinstance(meta, dict) or meta.get("event_type") != EVENT_TYPE:
        return None
    payload = meta.get("event_payload")
    if not isinstance(payload, dict) or payload.get("outbox_id") != outbox_id:
        return None
    part = payload.get("part")
    return part if isinstance(part, int) else None


async def posted(client: AsyncWebClient, channel: str, item: OutboxItem) -> dict[int, str]:
    """The parts of ``item`` already in Slack: part number -> ts. Raises slack_sdk's errors."""
    thread_ts = item.to.route.get("thread_ts")
    found: dict[int, str] = {}
    cursor: str | None = None
    for _ in range(PAGES):
        if thread_ts:
            response = await client.conversations_replies(
                channel=channel, ts=thread_ts, include_all_metadata=True, limit=PAGE, cursor=cursor
            )
        else:
            oldest = f"{item.created.timestamp() - HISTORY_SLACK_S:.6f}"
            response = await client.conversations_history(
                channel=channel, oldest=oldest, include_all_metadata=True, limit=PAGE, cursor=cursor
            )
        for message in response.get("messages") or []:
            part = _part(message, item.outbox_id)
            if part is not None:
                found.setdefault(part, str(message["ts"]))
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not response.get("has_more") or not cursor:
            break
    return found
