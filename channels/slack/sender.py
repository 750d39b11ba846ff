"""Posts outbox items in their Slack thread with the official client (slack_sdk).

Slack has no idempotency key for chat.postMessage, so an item is one API call whenever it
fits one message (up to ~39,000 characters, as 3,000-character section blocks): a failed call
posted nothing and a retry cannot double it. A longer text takes several messages; the parts
already posted are remembered, so a retry after a 429 on part two does not repeat part one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.delivery import SendFailed
from channels.slack import blocks
from channels.slack.markup import MESSAGE_LIMIT, escape, split
from model.records import Delivery, OutboxItem

CHANNEL = "slack"

# Errors worth another try later; everything else (channel_not_found, not_in_channel,
# invalid_auth, is_archived...) will fail the same way again.
_TRANSIENT = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "service_unavailable",
        "internal_error",
        "fatal_error",
        "request_timeout",
    }
)
_REMEMBERED = 1000


def provider_id(channel: str, ts: str) -> str:
    """A posted message's id: ts is only unique within its channel."""
    return f"{channel}:{ts}"


def failure(exc: Exception, what: str) -> SendFailed:
    """A Web API error as the outbox understands it: transient (retry later) or not."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        data = exc.response.data
        error = str((data.get("error") if isinstance(data, dict) else None) or f"HTTP {status}")
        if status == 429:
            after = exc.response.headers.get("Retry-After")  # a case-insensitive mapping
            try:
                retry_after = float(after) if after is not None else 1.0
            except ValueError:
                retry_after = 1.0
            return SendFailed(f"{what}: rate limited", transient=True, retry_after=retry_after)
        transient = status >= 500 or error in _TRANSIENT
        return SendFailed(f"{what}: {error}", transient=transient)
    # Connection refused or reset, a timeout: nothing reached Slack, or we cannot tell.
    return SendFailed(f"{what}: {type(exc).__name__}: {exc}"[:300], transient=True)


class SlackSender:
    """The Slack side of the outbox."""

    channel = CHANNEL
    resend_when_unknown = True
    """A crash mid-call may repeat a message; losing an approval request would be worse."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._posted: OrderedDict[str, list[str]] = OrderedDict()

    async def send(self, item: OutboxItem) -> Delivery:
        route = item.to.route
        channel = route.get("channel") or item.to.address
        thread_ts = route.get("thread_ts")
        if item.kind == "approval" and item.request_id and item.tool is not None:
            payloads = [self._approval(item)]
        else:
            payloads = self._messages(item)
        done = self._posted.get(item.outbox_id, [])
        for payload in payloads[len(done) :]:
            try:
                response = await self.client.chat_postMessage(
                    channel=channel,
                    thread_ts=thread_ts,
                    unfurl_links=False,
                    unfurl_media=False,
                    **payload,
                )
            except (TimeoutError, SlackApiError, aiohttp.ClientError, OSError) as exc:
                if done:
                    self._remember(item.outbox_id, done)
                raise failure(exc, "chat.postMessage") from None
            done = [*done, str(response["ts"])]
            channel = str(response.get("channel") or channel)  # a user id becomes a DM id
        self._posted.pop(item.outbox_id, None)
        ids = [provider_id(channel, ts) for ts in done]
        return Delivery(provider_id=ids[0], refs=ids[1:], detail={"channel": channel, "ts": done})

    def _remember(self, outbox_id: str, posted: list[str]) -> None:
        self._posted[outbox_id] = posted
        self._posted.move_to_end(outbox_id)
        while len(self._posted) > _REMEMBERED:
            self._posted.popitem(last=False)

    @staticmethod
    def _approval(item: OutboxItem) -> dict[str, Any]:
        return {
            "text": escape(item.text),
            "blocks": blocks.approval(item.request_id or "", item.tool or "", item.arguments or {}),
        }

    @staticmethod
    def _messages(item: OutboxItem) -> list[dict[str, Any]]:
        parts = split(escape(item.text or " "), MESSAGE_LIMIT)
        payloads: list[dict[str, Any]] = []
        for n, part in enumerate(parts):
            content = blocks.sections(part)
            if item.kind == "question" and n == len(parts) - 1:
                content.append(
                    {
                        "type": "context",
                        "elements": [{"type": "mrkdwn", "text": "Reply in this thread to answer."}],
                    }
                )
            payloads.append({"text": part, "blocks": content})
        return payloads
