"""Posts outbox items in their Slack thread with the official client (slack_sdk).

Slack has no idempotency key for chat.postMessage. A call can post and still fail for us
(the connection drops before the answer), so posts are never retried blindly: slack_sdk's
connection-error retry handler is off for them, each message carries its outbox id (see
channels.slack.tags), and before the outbox repeats an attempt it asks ``find`` whether the
earlier one went out. An item is one message whenever it fits (up to ~39,000 characters, as
3,000-character section blocks); a longer text takes several, and only the missing parts are
posted again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.delivery import SendFailed
from channels.pagelinks import PageLinks
from channels.slack import blocks, brief, tags, withdrawn
from channels.slack.direct import Direct
from channels.slack.markup import MESSAGE_LIMIT, escape, split
from channels.slack.mrkdwn import to_mrkdwn
from channels.slack.withdrawn import Posts
from channels.slack.working import Working
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


def _delivery(channel: str, posted: list[str]) -> Delivery:
    ids = [provider_id(channel, ts) for ts in posted]
    return Delivery(provider_id=ids[0], refs=ids[1:], detail={"channel": channel, "ts": posted})


class SlackSender:
    """The Slack side of the outbox."""

    channel = CHANNEL
    resend_when_unknown = True
    """An interrupted attempt is looked up first (``find``); one that cannot be found is
    posted again: losing an approval request would be worse than a rare double."""

    def __init__(
        self,
        client: AsyncWebClient,
        working: Working | None = None,
        direct: Direct | None = None,
        pages: PageLinks | None = None,
        posts: Posts | None = None,
    ) -> None:
        self.client = client
        self.posts = posts
        """Where each approval was posted: a withdrawal takes the buttons off those."""
        self.pages = pages
        """Links to the thread's read-only page, on approval messages."""
        self.working = working
        self.direct = direct
        """Ends a DM's open conversation when its final answer is out."""
        """Clears the "working" reaction of a thread once the agent's message is out."""
        """For reads (conversations.replies/history): safe to retry, the given handlers stay."""
        self.poster = AsyncWebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            ssl=client.ssl,
            proxy=client.proxy,
            headers=client.headers,
            retry_handlers=[],  # not the default connection-error retry: it can post twice
        )
        self._posted: OrderedDict[str, list[str]] = OrderedDict()

    async def send(self, item: OutboxItem) -> Delivery:
        if item.kind == "withdrawn":
            return await self._withdraw(item)
        channel = self._channel(item)
        thread_ts = item.to.route.get("thread_ts")
        payloads = await self._payloads(item)
        done = self._posted.get(item.outbox_id, [])
        for n, payload in enumerate(payloads[len(done) :], start=len(done)):
            try:
                response = await self.poster.chat_postMessage(
                    channel=channel,
                    thread_ts=thread_ts,
                    unfurl_links=False,
                    unfurl_media=False,
                    metadata=tags.metadata(item.outbox_id, n),
                    **payload,
                )
            except (TimeoutError, SlackApiError, aiohttp.ClientError, OSError) as exc:
                if done:
                    self._remember(item.outbox_id, done)
                raise failure(exc, "chat.postMessage") from None
            done = [*done, str(response["ts"])]
            channel = str(response.get("channel") or channel)  # a user id becomes a DM id
        self._posted.pop(item.outbox_id, None)
        if self.posts is not None and item.kind == "approval" and item.request_id:
            await self.posts.remember(item.thread_id, item.request_id, channel, done[0])
        if self.working is not None:
            await self.working.clear(item.thread_id)
        route = item.to.route
        if self.direct is not None and item.kind == "final" and "thread_ts" not in route:
            await self.direct.end(route.get("team", ""), channel, item.thread_id)
        return _delivery(channel, done)

    async def find(self, item: OutboxItem) -> Delivery | None:
        """What an earlier attempt of ``item`` posted: the whole item (its delivery), or None
        after remembering the parts that are there, so ``send`` posts only the rest."""
        if item.kind == "withdrawn":
            return None  # chat.update again changes nothing: just do it
        channel = self._channel(item)
        try:
            if channel.startswith(("U", "W")):  # a user id: its DM's id holds the history
                opened = await self.client.conversations_open(users=channel)
                channel = str(opened["channel"]["id"])
            found = await tags.posted(self.client, channel, item)
        except (TimeoutError, SlackApiError, aiohttp.ClientError, OSError) as exc:
            raise failure(exc, "looking for an earlier post") from None
        parts = len(await self._payloads(item))
        done: list[str] = []
        while len(done) in found:
            done.append(found[len(done)])
        if len(done) >= parts:
            self._posted.pop(item.outbox_id, None)
            return _delivery(channel, done[:parts])
        if done:
            self._remember(item.outbox_id, done)
        return None

    async def _withdraw(self, item: OutboxItem) -> Delivery:
        """Take the buttons off every message that offered the withdrawn request."""
        rid = item.request_id or ""
        posted = await self.posts.of(item.thread_id, rid) if self.posts and rid else []
        updated: list[str] = []
        for channel, ts in posted:
            try:
                await self.poster.chat_update(
                    channel=channel,
                    ts=ts,
                    text=escape(item.text),
                    blocks=withdrawn.blocks(item.tool or "", item.arguments or {}, item.text),
                )
            except SlackApiError as exc:
                if exc.response.get("error") == "message_not_found":
                    continue  # deleted in Slack: nothing left to click
                raise failure(exc, "chat.update") from None
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise failure(exc, "chat.update") from None
            updated.append(provider_id(channel, ts))
        first = updated[0] if updated else f"withdrawn:{rid}"
        return Delivery(provider_id=first, refs=updated[1:], detail={"updated": len(updated)})

    @staticmethod
    def _channel(item: OutboxItem) -> str:
        return item.to.route.get("channel") or item.to.address

    async def _payloads(self, item: OutboxItem) -> list[dict[str, Any]]:
        if item.kind == "approval" and item.request_id and item.tool is not None:
            link = await self.pages.link(item.thread_id, item.created) if self.pages else None
            return [self._approval(item, link)]
        return self._messages(item)

    def _remember(self, outbox_id: str, posted: list[str]) -> None:
        self._posted[outbox_id] = posted
        self._posted.move_to_end(outbox_id)
        while len(self._posted) > _REMEMBERED:
            self._posted.popitem(last=False)

    @staticmethod
    def _approval(item: OutboxItem, link: str | None) -> dict[str, Any]:
        shown = blocks.approval(
            item.request_id or "", item.tool or "", item.arguments or {}, item.editable, item.grants
        )
        at = next((n for n, b in enumerate(shown) if b.get("type") == "actions"), len(shown))
        shown[at:at] = brief.blocks(item, link)  # what it takes to decide, above the buttons
        return {"text": brief.fallback_text(item), "blocks": shown}

    @staticmethod
    def _messages(item: OutboxItem) -> list[dict[str, Any]]:
        # The model writes Markdown; Slack shows mrkdwn (escaped: nothing becomes a mention).
        parts = split(to_mrkdwn(item.text or " "), MESSAGE_LIMIT)
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
