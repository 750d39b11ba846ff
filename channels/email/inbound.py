"""Received mail into the store: recipients checked at RCPT, the message stored before 250.

The SMTP conversation is the webhook of this channel: it verifies (recipient, sender,
authentication), translates the message into an event, appends it, and answers. 5xx refuses
for good (nothing is stored); 4xx asks the sending server to try again later.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from agent.config import Registry
from agent.tools import Agent
from channels.email.chain import MailChain, received_writes
from channels.email.noise import Noise
from channels.email.parse import ParsedMail, parse
from channels.email.refusals import Refusals
from channels.email.tokens import Keyring, ReplyRef
from channels.email.trust import address_matches, authenticated, patterns, read_decision
from model.events import Answered, HumanResponse, UserMessage, decided
from model.ids import thread_id_for
from model.records import Origin, RequestRecord, RequestView, ThreadMeta
from store.errors import RequestAlreadyAnswered, RequestNotFound, ThreadNotFound
from store.port import ChannelPort, NewThread

log = logging.getLogger("switchboard.email")
_RE = re.compile(r"^\s*((re|fwd?|aw|sv|antw)\s*:\s*)+", re.I)

CHANNEL = "email"
OK = "250 2.0.0 OK: stored"
IGNORED = "250 2.0.0 OK: automatic message, not answered"
DUPLICATE = "250 2.0.0 OK: already stored"
LATE = "250 2.0.0 OK: that request was already settled; nothing was changed"
TRY_LATER = "451 4.3.0 Temporary failure storing the message, please try again later"


class Refused(Exception):
    """The message is refused for good; ``reply`` is the SMTP answer (5xx)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class Recipient:
    """An accepted recipient: an agent's own address, or a signed reply address."""

    address: str
    agent: str | None = None
    ref: ReplyRef | None = None


class Inbound:
    """The aiosmtpd handler (``handle_RCPT``, ``handle_DATA``) of the inbound server."""

    def __init__(
        self,
        port: ChannelPort,
        chain: MailChain,
        registry: Registry,
        keyring: Keyring,
        *,
        domain: str,
        trusted_authserv_ids: list[str],
    ) -> None:
        self.port = port
        self.chain = chain
        self.registry = registry
        self.keyring = keyring
        self.domain = domain.lower()
        self.trusted = trusted_authserv_ids
        self.refusals: Refusals | None = None
        """Tells an approver whose reply was not vouched for why (set when mail can go out)."""
        self._addresses: dict[str, str] = {}
        self._domains: dict[str, str] = {}
        for name, agent in registry.agents.items():
            own = patterns(agent.settings, "email_addresses") or [f"{name}@{self.domain}"]
            self._addresses.update(dict.fromkeys(own, name))
            self._domains.update(
                {d.lstrip("@"): name for d in patterns(agent.settings, "email_domains") or []}
            )

    # ---- recipients -----------------------------------------------------------------------
    async def recipient(self, address: str) -> Recipient | None:
        """Who this address is, or None: we accept mail for nobody else (never a relay)."""
        address = address.strip().lower()
        local, _, domain = address.rpartition("@")
        if local.startswith("reply+") and domain == self.domain:
            ref = (await self.keyring.signer()).read_reply_token(local[len("reply+") :])
            return Recipient(address, ref=ref) if ref else None
        agent = self._addresses.get(address) or self._domains.get(domain)
        return Recipient(address, agent=agent) if agent else None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if await self.recipient(address) is None:
            return f"550 5.1.1 <{address}>: no such recipient here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or b""
        try:
            return await self.receive(envelope.mail_from, envelope.rcpt_tos, raw)
        except Refused as exc:
            log.info("refused mail from %s: %s", envelope.mail_from, exc.reply)
            return exc.reply
        except Exception:
            # Redis down, a timeout, a bug: the sending server keeps the mail and retries.
            log.exception("storing mail from %s failed", envelope.mail_from)
            return TRY_LATER

    # ---- the message ----------------------------------------------------------------------
    async def receive(self, mail_from: str | None, rcpt_tos: list[str], raw: bytes) -> str:
        """Verify, translate and store one message; the SMTP answer to give."""
        try:
            mail = parse(raw, mail_from)
        except Exception:  # the parser is lenient; what still breaks it will not get better
            log.warning("unparseable mail from %s", mail_from, exc_info=True)
            raise Refused("554 5.6.0 the message could not be parsed") from None
        if mail.noise is not None:
            log.info("ignored mail from %s: %s", mail.sender or mail_from, mail.noise.reason)
            if mail.noise.kind == "bounce" and mail.noise.failed:
                await self._record_bounce(mail.noise)
            return IGNORED
        if not mail.sender:
            raise Refused("550 5.1.7 the message has no From address we can read")
        recipients = [r for r in [await self.recipient(a) for a in rcpt_tos] if r is not None]
        message_id = mail.message_id or "sha256:" + hashlib.sha256(raw).hexdigest()[:40]
        if await self.port.resolve(CHANNEL, message_id) is not None:
            # Stored before (a redelivery), or one of our own mails come back: nothing to do.
            # This also catches a repeated answer, which the inbox's dedupe never sees.
            return DUPLICATE
        token = next((r.ref for r in recipients if r.ref is not None), None)
        found = await self._thread_of(mail, token)
        if found is None:
            agent = next((r for r in recipients if r.agent is not None), None)
            if agent is None:
                raise Refused("550 5.1.1 this reply address points at nothing any more")
            return await self._start(mail, message_id, agent)
        meta, request_id = found
        self._check_sender(mail.sender, meta)
        if request_id is not None:
            answered = await self._answer(mail, message_id, request_id, token)
            if answered is not None:
                return answered
        event = UserMessage(
            channel=CHANNEL, sender=mail.sender, text=_text(mail), message_id=message_id
        )
        stored = await self._append(meta.thread_id, event, message_id)
        return OK if stored else DUPLICATE

    async def _thread_of(
        self, mail: ParsedMail, token: ReplyRef | None
    ) -> tuple[ThreadMeta, str | None] | None:
        """The thread a reply continues: by its reply token, else by the ids it answers."""
        if token is not None:
            try:
                return await self.port.meta(token.thread_id), token.request_id
            except ThreadNotFound:
                raise Refused("550 5.1.1 this reply address points at nothing any more") from None
        for parent in mail.parents:
            hit = await self.port.resolve(CHANNEL, parent)
            if hit is not None:
                try:
                    return await self.port.meta(hit.thread_id), hit.request_id
                except ThreadNotFound:
                    continue
        return None

    async def _start(self, mail: ParsedMail, message_id: str, to: Recipient) -> str:
        agent = self.registry.agents[to.agent or ""]
        if not _may_write(agent, mail.sender):
            raise Refused(f"550 5.7.1 <{mail.sender}> may not write to {to.address}")
        thread_id = thread_id_for(CHANNEL, message_id)
        origin = Origin(
            channel=CHANNEL,
            address=mail.sender,
            route={
                "message_id": message_id,
                "subject": mail.subject,
                "references": " ".join(mail.references),
                "agent_address": to.address,
            },
        )
        event = UserMessage(
            channel=CHANNEL, sender=mail.sender, text=_text(mail, first=True), message_id=message_id
        )
        stored = await self._append(thread_id, event, message_id, NewThread(agent.name, origin))
        return OK if stored else DUPLICATE

    def _check_sender(self, sender: str, meta: ThreadMeta) -> None:
        """On a thread: its starter, the agent's allowed senders, and the tools' approvers."""
        agent = self.registry.agents.get(meta.agent)
        if sender == meta.origin.address.lower() or agent is None:
            return
        if _may_write(agent, sender):
            return
        raise Refused(f"550 5.7.1 <{sender}> may not write to this thread")

    async def _answer(
        self, mail: ParsedMail, message_id: str, request_id: str, token: ReplyRef | None
    ) -> str | None:
        """Answer the request a reply points at; None: not an answer, store it as a message."""
        try:
            view = await self.port.request(request_id)
        except RequestNotFound:
            return None
        record = view.request
        if view.status != "pending":
            return await self._late(mail, view)
        response: HumanResponse
        if record.kind == "question":
            response = Answered(
                request_id=request_id, channel=CHANNEL, responder=mail.sender, answer=_text(mail)
            )
        else:
            decision = read_decision(mail.reply)
            if decision is None:
                return None
            await self._check_approver(mail, record, token)
            response = decided(
                decision[0],
                request_id=request_id,
                channel=CHANNEL,
                responder=mail.sender,
                comment=decision[1],
            )
        await self._remember(message_id, record.thread_id)  # before the wake-up: see there
        try:
            await self.port.answer(request_id, response)
        except RequestAlreadyAnswered:
            return DUPLICATE
        return OK

    async def _late(self, mail: ParsedMail, view: RequestView) -> str | None:
        """An approver's APPROVE / REJECT for a request already settled: a short reply saying
        what became of it, and nothing stored (it starts no conversation). None otherwise."""
        record = view.request
        if record.kind != "approval" or read_decision(mail.reply) is None:
            return None
        if not record.may_answer(CHANNEL, mail.sender):
            return None
        if self.refusals is not None:
            await self.refusals.late(mail, view)
        log.info("late answer from %s to %s (%s)", mail.sender, record.request_id, view.status)
        return LATE

    async def _check_approver(
        self, mail: ParsedMail, record: RequestRecord, token: ReplyRef | None
    ) -> None:
        if token is None or token.request_id != record.request_id:
            raise Refused("550 5.7.1 approvals are accepted only as replies to the approval mail")
        if not record.may_answer(CHANNEL, mail.sender):
            raise Refused(f"550 5.7.1 <{mail.sender}> is not an approver of this request")
        if not authenticated(mail.auth_results, mail.sender, self.trusted):
            if self.refusals is not None:
                # Before the SMTP answer (the sending server waits minutes for it): a task
                # left running could be lost at shutdown, and the note is one relay call.
                await self.refusals.unverified(mail, record)
            raise Refused(
                f"550 5.7.1 approval refused: mail from <{mail.sender}> did not pass DKIM or DMARC"
            )

    async def _append(
        self, thread_id: str, event: UserMessage, message_id: str, create: NewThread | None = None
    ) -> bool:
        """Store the mail as a message, remembered as ``_remember`` does and in the same
        round trip, ahead of the append (so, as there, before the wake-up)."""
        return await self.port.append_message(
            thread_id,
            event,
            dedupe=message_id,
            create=create,
            remember=message_id,
            before=received_writes(thread_id, message_id),
        )

    async def _remember(self, message_id: str, thread_id: str) -> None:
        """A received mail joined the thread: replies citing it find the thread, and our
        next mail answers it. Recorded before the thread is woken, so that a fast run's
        reply cannot go out answering the mail before this one."""
        await self.port.remember(CHANNEL, message_id, thread_id)
        await self.chain.received(thread_id, message_id)

    async def _record_bounce(self, noise: Noise) -> None:
        """A failed delivery of our own mail: reported to its thread, which asks elsewhere."""
        why = noise.diagnostic or "the receiving server returned the message"
        for message_id in noise.bounced:
            hit = await self.port.resolve(CHANNEL, message_id)
            if hit is not None and hit.outbox_id is not None:
                await self.port.report_failure(hit.thread_id, hit.outbox_id, f"bounced: {why}")


def _text(mail: ParsedMail, *, first: bool = False) -> str:
    """What the human said: the fresh reply; for a first mail, else its subject (a request
    may be all subject). A reply's subject only repeats ours."""
    text = mail.content() or (_RE.sub("", mail.subject).strip() if first else "")
    if not text:
        raise Refused("550 5.6.0 the message is empty")
    return text


def _may_write(agent: Agent, sender: str) -> bool:
    """The agent's ``email_senders`` (``"*"``: anyone), and its tools' email approvers.

    Closed unless configured, as SMS is: whoever can mail an agent can make it act.
    """
    allowed = patterns(agent.settings, "email_senders") or []
    if address_matches(sender, allowed):
        return True
    approvers = {str(a).lower() for t in agent.tools.values() for a in t.approvers}
    return f"{CHANNEL}:{sender.lower()}" in approvers
