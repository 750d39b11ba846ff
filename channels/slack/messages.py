"""Humans' messages from Slack into the store: a mention or a DM starts a thread, a reply in
the Slack thread continues it, and a reply written after the agent's question answers it."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncBoltContext

from channels.slack import payloads
from channels.slack.payloads import MessageIn
from model.events import Answered, UserMessage
from model.ids import thread_id_for
from model.records import Origin
from store.errors import RequestAlreadyAnswered, ThreadNotFound
from store.port import ChannelPort, NewThread

log = logging.getLogger("switchboard.slack")

CHANNEL = "slack"


class Messages:
    """The Events API listener for app_mention and message events."""

    def __init__(self, port: ChannelPort, agent: str) -> None:
        self.port = port
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
            # copies of a mention (app_mention and message), every retry, and a copy of a
            # message that answered a question share it, and are stored once.
            await self.port.append_message(tid, event, dedupe=msg.ts, create=create)
        except ThreadNotFound:
            log.debug("reply in a Slack thread we are not part of: %s", msg.conversation)

    async def _answers_question(self, tid: str, msg: MessageIn) -> bool:
        """A reply written after the agent's latest question answers it. True: handled.

        One small read (the thread's open question and where it was posted), never the
        thread's events. The answer is deduplicated by ts with the messages: when another
        copy of this message got there first, the message path below finds it stored.
        """
        question = await self.port.open_question(tid)
        if question is None or question.status != "pending":
            return False
        posted = question.sent.rsplit(":", 1)[-1] if question.sent else None
        if not _later_than(msg.ts, posted):
            return False  # written before the question was asked: a message, not an answer
        rid = question.request.request_id
        response = Answered(request_id=rid, channel=CHANNEL, responder=msg.user, answer=msg.text)
        try:
            await self.port.answer(rid, response, dedupe=msg.ts)
        except RequestAlreadyAnswered:
            return False  # answered meanwhile (or by a copy of this): store it as a message
        return True


def _later_than(ts: str, other: str | None) -> bool:
    try:
        return other is not None and float(ts) > float(other)
    except ValueError:
        return False
