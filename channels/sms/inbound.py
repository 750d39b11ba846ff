"""What an inbound text does: a decision on a pending approval, an opt-out, or a message.

Each path ends in the store (an answer bound to its request, a message on the number's
thread) or in a short reply to the texter; the agent itself runs later, in a worker.
"""

from __future__ import annotations

import asyncio
import logging

from agent.config import Registry
from agent.routing import own
from agent.tools import Agent
from channels.late import late_reply
from channels.sms import parse
from channels.sms.parse import Decision, InboundSms, StatusReport
from channels.sms.state import Pending, SmsState
from model.events import UserMessage, decided
from model.ids import thread_id_for
from model.records import Origin, call_text
from store.errors import (
    AlreadyCounted,
    GrantNotOffered,
    NotAllowed,
    QuorumIncomplete,
    RequestAlreadyAnswered,
    RequestNotFound,
    ThreadNotFound,
)
from store.port import ChannelPort, NewThread

log = logging.getLogger("switchboard.sms")

CHANNEL = "sms"
FAILED = frozenset({"failed", "undelivered"})
REF_WAIT_TRIES = 10
REF_WAIT_PAUSE = 0.2


def known_senders(agent: Agent) -> frozenset[str]:
    """Who may start or continue a thread by text: the agent's ``sms_senders`` setting
    (``"*"``: anyone), plus every number its tools name as approver or notify target."""
    listed = agent.settings.get("sms_senders", [])
    written = {str(n) for n in listed} if isinstance(listed, list) else set()
    for tool in agent.tools.values():
        written |= {a.address for a in (*tool.approvers, *tool.notify) if a.channel == CHANNEL}
    numbers = set()
    for n in written:
        try:
            numbers.add(n if n == "*" else parse.e164(n))
        except parse.PayloadError:
            log.warning("agent %s: %r is not a phone number; ignored", agent.name, n)
    return frozenset(numbers)


def knows(agent: Agent, number: str) -> bool:
    """May ``number`` talk to ``agent`` (see ``known_senders``)?"""
    allowed = known_senders(agent)
    return "*" in allowed or number in allowed


def _what(p: Pending) -> str:
    r = p.request
    return call_text(r.tool, r.arguments or {}) if r.tool else r.text[:60]


class SmsInbound:
    def __init__(self, port: ChannelPort, state: SmsState, registry: Registry) -> None:
        self.port = port
        self.state = state
        self.registry = registry

    async def text(self, sms: InboundSms) -> str | None:
        """Handle one text once; the reply for the texter, if any."""
        if sms.body.strip() and parse.keyword(sms) is None and parse.decision(sms.body) is None:
            # A plain message (most texts) only appends to its thread, which the store
            # deduplicates by MessageSid in the same script: one round trip, where the claim,
            # the opt-out read and the mark would make it four. Keywords and decisions
            # change channel state (codes, opt-outs) and are claimed as before.
            return await self._message(sms)
        if not await self.state.claim_inbound(sms.message_sid):
            return None  # Twilio retried a text we have (or are) handling
        try:
            reply = await self._handle(sms)
        except BaseException:
            await self.state.release_inbound(sms.message_sid)
            raise
        await self.state.done_inbound(sms.message_sid)
        return reply

    async def _handle(self, sms: InboundSms) -> str | None:
        number = sms.sender
        word = parse.keyword(sms)
        opted_out = await self.state.opted_out(number)
        if word is not None and word.kind == "opt_out":
            # Twilio itself confirms the opt-out to the texter; we only stop using the number.
            await self.state.opt_out(number)
            for p in await self.state.pending(number):
                await self.state.forget(number, p)
                if p.outbox_id is not None:  # the run loop offers it elsewhere
                    reason = f"{number} opted out of SMS (STOP)"
                    await self.port.report_failure(p.request.thread_id, p.outbox_id, reason)
            return None
        if word is not None and word.kind == "opt_in" and (opted_out or sms.opt_out_type):
            await self.state.opt_in(number)
            return None  # a YES that re-subscribes is not also an approval
        if word is not None and word.kind == "help":
            return None  # Twilio answers HELP itself
        if not sms.body.strip():
            return "Only text is understood here."
        decision = parse.decision(sms.body)
        if decision is not None:
            pending = await self.state.pending(number)
            if pending:
                return await self._decide(number, decision, pending)
            settled = await self.state.settled(number)
            if settled is not None:
                return late_reply(settled)  # a late answer is not a new conversation
        return await self._message(sms)

    async def _decide(self, number: str, decision: Decision, pending: list[Pending]) -> str:
        if decision.code is not None:
            chosen = next((p for p in pending if p.code == decision.code), None)
            if chosen is None:
                waiting = "; ".join([await self._listed(p) for p in pending])
                return f"No request {decision.code} is waiting for you. Waiting: {waiting}."
        elif len(pending) == 1:
            chosen = pending[0]
        else:
            listed = "; ".join([await self._listed(p) for p in pending])
            return (
                f"{len(pending)} requests are waiting. Reply YES <code>, or NO <code> and a "
                f"reason. {listed}"
            )
        record = chosen.request
        response = decided(
            decision.verdict,
            request_id=record.request_id,
            channel=CHANNEL,
            responder=number,
            comment=decision.comment,
        )
        if decision.grant:
            response = response.model_copy(update={"grant": "thread"})
        try:
            await self.port.answer(record.request_id, response)
        except GrantNotOffered:
            return (
                f"{_what(chosen)} cannot be approved for the rest of the thread; reply YES to "
                "approve this call only. Nothing was changed."
            )
        except QuorumIncomplete:
            return (
                f"{_what(chosen)} needs more approvals first: YES ALL is accepted only from "
                "the last one needed; reply YES to approve. Nothing was changed."
            )
        except NotAllowed:
            return f"You are not allowed to decide {_what(chosen)}. Nothing was changed."
        except AlreadyCounted:
            await self.state.forget(number, chosen)
            return f"Your approval of {_what(chosen)} was already counted. Nothing was changed."
        except (RequestAlreadyAnswered, RequestNotFound):
            await self.state.forget(number, chosen)
            return f"{_what(chosen)} was already decided. Nothing was changed."
        await self.state.forget(number, chosen)
        done = "Approved" if decision.verdict == "approve" else "Rejected"
        if decision.grant:
            return f"Approved for the rest of this thread: {_what(chosen)}."
        return f"{done}: {_what(chosen)}."

    async def _listed(self, p: Pending) -> str:
        """One line of the code list: two requests for the same call must read differently,
        so it names the agent, the call, who asked and when."""
        asked = p.request.created.strftime("%H:%M UTC")
        try:
            meta = await self.port.meta(p.request.thread_id)
        except ThreadNotFound:
            return f"{p.code}: {_what(p)} ({asked})"
        return f"{p.code}: {meta.agent} {_what(p)}, asked by {meta.origin.target} {asked}"

    async def _message(self, sms: InboundSms) -> str | None:
        """A text that decides nothing: the next message of this number's thread."""
        agent = self.agent_for(sms)
        if not knows(agent, sms.sender):
            log.info("text from unknown number %s refused", sms.sender)
            return "This number is not set up to talk to the agent."
        tid = thread_id_for(CHANNEL, f"{sms.to}:{sms.sender}")
        event = UserMessage(
            channel=CHANNEL, sender=sms.sender, text=sms.body, message_id=sms.message_sid
        )
        origin = Origin(channel=CHANNEL, address=sms.sender, route={"from": sms.to})
        await self.port.append_message(
            tid,
            event,
            dedupe=sms.message_sid,
            create=NewThread(agent=agent.name, origin=origin),
        )
        return None

    def agent_for(self, sms: InboundSms) -> Agent:
        """The agent a text is for: the one whose ``sms_numbers`` has the number texted; on a
        number no agent claims (``TWILIO_FROM_NUMBER``), the default agent, or else the first
        agent that knows the texter (an approver of another agent reaches it there too)."""
        owner = self.registry.owner(CHANNEL, sms.to)
        if owner is not None:
            return self.registry.agents[owner]
        default = self.registry.agents[self.registry.default]
        shared = [a for a in self.registry.agents.values() if not own(a.settings, CHANNEL)]
        for agent in sorted(shared, key=lambda a: a is not default):  # the default first
            if knows(agent, sms.sender):
                return agent
        return default

    async def status(self, report: StatusReport) -> None:
        """A delivery status callback: every status is noted on its outbox item; a failed
        text is reported to its thread, whose run loop offers the request elsewhere."""
        target = await self._item(report)
        if target is None:
            return
        thread_id, outbox_id = target
        await self.port.record_status(thread_id, outbox_id, report.status)
        if report.status not in FAILED:
            return
        why = f"Twilio reported {report.status} (error {report.error_code or 'none'})"
        if report.error_code == str(parse.OPTED_OUT_ERROR) and report.to:
            await self.state.opt_out(report.to)
        await self.port.report_failure(thread_id, outbox_id, why)

    async def _item(self, report: StatusReport) -> tuple[str, str] | None:
        """Which outbox item a callback is about: our URL's tag, or (texts sent before the
        tag) the SID's reference."""
        if report.thread_id and report.outbox_id:
            return report.thread_id, report.outbox_id
        found = await self.port.resolve(CHANNEL, report.message_sid)
        for _ in range(REF_WAIT_TRIES if report.status in FAILED else 0):
            if found is not None:
                break
            # A quick failure can beat the sender's own record of the SID by a moment.
            await asyncio.sleep(REF_WAIT_PAUSE)
            found = await self.port.resolve(CHANNEL, report.message_sid)
        if found is None or found.outbox_id is None:
            return None
        return found.thread_id, found.outbox_id
