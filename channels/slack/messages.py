"""Humans' messages from Slack into the store: a mention or a DM starts a thread, a reply in
the Slack thread continues it, and a reply written after the agent's question answers it."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncBoltContext

from channels.slack import payloads
from channels.slack.payloads import MessageIn
from model.events import HumanResponse, UserMessage
from model.ids import thread_id_for
from model.records import Origin, RequestView, ThreadView
from store.errors import RequestAlreadyAnswered, ThreadNotFound
from store.threads import NewThread, ThreadStore

log = logging.getLogger("switchboard.slack")

CHANNEL = "slack"
CLOCK_SKEW = 5.0
"""Seconds our clock may lag Slack's when comparing a receive time with a message ts."""


class Messages:
    """The Events API listener for app_mention and message events."""

    def __init__(self, store: ThreadStore, agent: str) -> None:
        self.store = store
        self.agent = agent

    async def on_event(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        msg = payloads.message(body, context.bot_user_id)
        if msg is not None:
            await self.take(msg)

    async def take(self, msg: MessageIn) -> None:
        """Store a human's message once: an answer to the open question, or a message."""
        tid = thread_id_for(CHANNEL, msg.conversation)
        if msg.is_reply and await self._answers_question(tid, msg):
            return
        create = None
        if msg.starts:
            route = {"team": msg.team, "channel": msg.channel, "thread_ts": msg.thread_ts}
            origin = Origin(channel=CHANNEL, address=msg.user, route=route)
            create = NewThread(agent=self.agent, origin=origin)
        event = UserMessage(channel=CHANNEL, sender=msg.user, text=msg.text, message_id=msg.ts)
        try:
            # ts names the message within its channel, and the thread is per channel: both
            # copies of a mention (app_mention and message) and every retry share it.
            await self.store.append_inbound(tid, event, dedupe=msg.ts, create=create)
        except ThreadNotFound:
            log.debug("reply in a Slack thread we are not part of: %s", msg.conversation)

    async def _answers_question(self, tid: str, msg: MessageIn) -> bool:
        """A reply written after the agent's latest question answers it. True: handled.

        An answer does not pass through the inbound dedupe record, so a copy of a message
        that already answered (a retry, the app_mention twin) is recognized here instead.
        """
        try:
            view = await self.store.thread(tid)
        except ThreadNotFound:
            return False
        if _answered_by(view, msg):
            return True
        question = _latest_question(view)
        if question is None or question.status != "pending":
            return False
        if not _later_than(msg.ts, _posted_ts(view, question)):
            return False  # written before the question was asked: a message, not an answer
        rid = question.request.request_id
        response = HumanResponse(
            request_id=rid, channel=CHANNEL, responder=msg.user, answer=msg.text
        )
        try:
            await self.store.answer(rid, response)
        except RequestAlreadyAnswered:  # the other copy of this message may have won
            return _answered_by(await self.store.thread(tid), msg)
        return True


def _latest_question(view: ThreadView) -> RequestView | None:
    questions = [r for r in view.requests if r.request.kind == "question"]
    return questions[-1] if questions else None


def _posted_ts(view: ThreadView, question: RequestView) -> str | None:
    for o in view.outbox:
        if o.item.request_id == question.request.request_id and o.provider_id:
            return o.provider_id.rsplit(":", 1)[-1]
    return None


def _later_than(ts: str, other: str | None) -> bool:
    try:
        return other is not None and float(ts) > float(other)
    except ValueError:
        return False


def _answered_by(view: ThreadView, msg: MessageIn) -> bool:
    """Did an earlier copy of this message answer a question? Same person, same words, and
    received after this message was written (a later message saying the same is new)."""
    return any(
        isinstance(e, HumanResponse)
        and e.answer == msg.text
        and e.responder == msg.user
        and _later_than(str(e.at.timestamp() + CLOCK_SKEW), msg.ts)
        for e in [*view.events, *view.inbox]
    )
