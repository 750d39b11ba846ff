"""Humans' messages from Slack into the store: a mention or a DM starts a thread, a reply in
the Slack thread continues it, and a reply written after the agent's question answers it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncBoltContext

from channels.slack import payloads
from channels.slack.direct import Direct
from channels.slack.payloads import Edit, MessageIn
from channels.slack.working import Working
from model.events import Answered, UserMessage
from model.ids import thread_id_for
from model.records import Origin
from store.errors import QuestionAsked, RequestAlreadyAnswered, ThreadNotFound
from store.port import ChannelPort, NewThread
from store.scripts import Then

log = logging.getLogger("switchboard.slack")

CHANNEL = "slack"
CORRECTION = "(Correction: I edited my previous message. It now reads:) "
"""How an edit reaches the model: a new message that says what it is."""


class Messages:
    """The Events API listener for app_mention and message events."""

    def __init__(
        self,
        port: ChannelPort,
        agent: str,
        working: Working | None = None,
        direct: Direct | None = None,
    ) -> None:
        self.port = port
        self.agent = agent
        """The fallback: DMs, and channels no agent claims (SLACK_AGENT, else the default)."""
        self.channels: dict[str, str] = {}
        """Slack channel id -> the agent that claims it (``settings.slack_channels``)."""
        self.working = working
        self.direct = direct
        self._tasks: set[asyncio.Task[None]] = set()
        self.bot_user_id: str | None = None
        """The bot's own user id, as bolt's auth.test found it (at its first event): the
        lean route (channels/slack/events.py) waits for it, and declines to bolt until then."""

    def _show_working(self, tid: str, msg: MessageIn) -> None:
        """The reaction goes on after Slack has its ack: it must not hold the answer up."""
        if self.working is None:
            return
        task = asyncio.create_task(
            self.working.show(tid, msg.channel, msg.ts, _assistant_thread(msg))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)

    async def on_event(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        if context.bot_user_id is not None:
            self.bot_user_id = context.bot_user_id
        msg = payloads.message(body, context.bot_user_id)
        if msg is not None:
            await self.take(msg)
            return
        edit = payloads.edit(body, context.bot_user_id)
        if edit is not None:
            await self.correct(edit)

    async def correct(self, edit: Edit) -> None:
        """An edit of a message the agent has not answered yet reaches it as a correction;
        an edit of one it has acted on changes nothing (what it did stands)."""
        ref = await self.port.resolve(CHANNEL, f"{edit.channel}:{edit.ts}")  # a DM's message
        tid = ref.thread_id if ref is not None else thread_id_for(CHANNEL, edit.conversation)
        if self.working is None or not await self.working.pending(tid, edit.channel, edit.ts):
            log.debug("edit of a message already answered (or not ours): %s", edit.ts)
            return
        event = UserMessage(
            channel=CHANNEL,
            sender=edit.user,
            text=f"{CORRECTION}{edit.text}",
            message_id=f"{edit.ts}:{edit.event_id}",
        )
        try:
            await self.port.append_message(tid, event, dedupe=edit.event_id)
        except ThreadNotFound:
            log.debug("edit in a Slack thread we are not part of: %s", edit.conversation)

    async def take(self, msg: MessageIn) -> None:
        """Store a human's message once: an answer to the open question, or a message."""
        tid = thread_id_for(CHANNEL, msg.conversation)
        if msg.direct and self.direct is not None:
            await self._take_direct(msg, tid)
            return
        if msg.is_reply:
            # Under a message the agent started (a trigger's or schedule's report_to), the
            # Slack thread is ours only by the sent message's reference.
            ref = await self.port.resolve(CHANNEL, f"{msg.channel}:{msg.thread_ts}")
            tid = ref.thread_id if ref is not None else tid
        create = None
        if msg.starts:
            route = {"team": msg.team, "channel": msg.channel, "thread_ts": msg.thread_ts}
            origin = Origin(channel=CHANNEL, address=msg.user, route=route)
            create = NewThread(agent=self.channels.get(msg.channel, self.agent), origin=origin)
        event = UserMessage(channel=CHANNEL, sender=msg.user, text=msg.text, message_id=msg.ts)
        try:
            # ts names the message within its channel, and the thread is per channel: both
            # copies of a mention (app_mention and message), every retry, and a copy of a
            # message that answered a question share it, and are stored once.
            if await self._store(tid, msg, event, create, may_answer=msg.is_reply):
                self._show_working(tid, msg)
        except ThreadNotFound:
            if self.working is not None:
                await self.working.drop(tid, msg.channel, msg.ts)
            log.debug("reply in a Slack thread we are not part of: %s", msg.conversation)

    async def _take_direct(self, msg: MessageIn, tid: str) -> None:
        """A DM: a reply in a Slack thread joins the thread of the message it replies to;
        a top-level message continues the DM's open conversation, or starts one that is
        answered in the DM itself (a route without thread_ts)."""
        assert self.direct is not None
        route = {"team": msg.team, "channel": msg.channel}
        if msg.is_reply:
            ref = await self.port.resolve(CHANNEL, f"{msg.channel}:{msg.thread_ts}")
            tid = ref.thread_id if ref is not None else tid
            route["thread_ts"] = msg.thread_ts
            new = ref is None
        else:
            tid, new = await self.direct.open(msg.team, msg.channel, tid)
        origin = Origin(channel=CHANNEL, address=msg.user, route=route)
        event = UserMessage(channel=CHANNEL, sender=msg.user, text=msg.text, message_id=msg.ts)
        create = NewThread(agent=self.agent, origin=origin)
        # A reply in a Slack thread under this message finds the conversation.
        remember = f"{msg.channel}:{msg.ts}"
        if await self._store(tid, msg, event, create, may_answer=not new, remember=remember):
            self._show_working(tid, msg)

    async def _store(
        self,
        tid: str,
        msg: MessageIn,
        event: UserMessage,
        create: NewThread | None,
        *,
        may_answer: bool,
        remember: str | None = None,
    ) -> bool:
        """Store the message, or the answer it is (``may_answer``: on a thread that may
        have asked). True: stored, either way.

        The message goes first, on the condition that the thread never asked (one round
        trip, where reading the question first was two); only a thread that has asked is
        looked at for the question the message may answer.
        """
        before = self._expecting(tid, msg)
        if may_answer:
            try:
                return await self.port.append_message(
                    tid,
                    event,
                    dedupe=msg.ts,
                    create=create,
                    remember=remember,
                    before=before,
                    unasked=True,
                )
            except QuestionAsked:
                if await self._answers_question(tid, msg):
                    if remember is not None:  # an answer, not a message to reply under
                        await self.port.forget(CHANNEL, remember)
                    return True
        return await self.port.append_message(
            tid, event, dedupe=msg.ts, create=create, remember=remember, before=before
        )

    def _expecting(self, tid: str, msg: MessageIn) -> Then | None:
        """The working note (Working.expect), written with the message, ahead of it."""
        if self.working is None:
            return None
        return self.working.expecting(tid, msg.channel, msg.ts, _assistant_thread(msg))

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
        if self.working is not None:  # before the answer is stored: Working.expect
            await self.working.expect(tid, msg.channel, msg.ts, _assistant_thread(msg))
        rid = question.request.request_id
        response = Answered(request_id=rid, channel=CHANNEL, responder=msg.user, answer=msg.text)
        try:
            await self.port.answer(rid, response, dedupe=msg.ts)
        except RequestAlreadyAnswered:
            return False  # answered meanwhile (or by a copy of this): store it as a message
        return True


def _assistant_thread(msg: MessageIn) -> str | None:
    """The assistant thread the message was written in, whose status shows the agent works."""
    return msg.thread_ts if msg.assistant else None


def _later_than(ts: str, other: str | None) -> bool:
    try:
        return other is not None and float(ts) > float(other)
    except ValueError:
        return False
