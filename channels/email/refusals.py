"""Telling an approver why a reply did not decide, by mail, through the channel's relay.

An approval by reply counts only when a trusted receiving server vouched for it (DKIM or
DMARC pass in Authentication-Results from a host in EMAIL_TRUSTED_AUTHSERV_IDS). Without a
word back, the approver would think the deploy approved. The note goes to the reply's From
address, which may be forged; so it says nothing the approval mail did not (the request and
the signed links, bound to that address), and goes at most once per address per hour.

Not an outbox item: the reply did not join the thread (it is refused), so it is no message
of the thread; the channel sends it itself and a failed send is only logged.
"""

from __future__ import annotations

import logging
import secrets

import aiosmtplib
import redis.asyncio as aioredis

from channels.email import keys
from channels.email.compose import Outgoing, reply_subject
from channels.email.parse import ParsedMail
from channels.email.sender import EmailSender
from channels.late import late_reply
from model.records import RequestRecord, RequestView, call_text
from store.errors import ThreadNotFound

log = logging.getLogger("switchboard.email")

WHY = (
    "Your reply was not accepted as a decision on {what}, and nothing was changed.\n\n"
    "Why: a decision by reply counts only when the mail server that received it vouches for "
    "it (DKIM or DMARC pass in its Authentication-Results header), and your reply carried no "
    "such verdict from a server this service trusts (EMAIL_TRUSTED_AUTHSERV_IDS).\n\n"
    "{how}"
)
WITH_LINKS = "Decide with one of the signed links below instead (they work once)."
WITHOUT_LINKS = "Decide with the Approve or Reject link in the approval mail instead."


class Refusals:
    def __init__(self, sender: EmailSender, redis: aioredis.Redis) -> None:
        self.sender = sender
        self.redis = redis

    async def unverified(self, mail: ParsedMail, record: RequestRecord) -> bool:
        """Send the note, unless this address had one within the hour. True: sent."""
        links = await self.sender.links(record.request_id, mail.sender)
        what = call_text(record.tool, record.arguments or {}) if record.tool else "the request"
        text = WHY.format(what=what, how=WITH_LINKS if links else WITHOUT_LINKS)
        return await self._note(mail, record, keys.refusal_note(mail.sender), text, links)

    async def late(self, mail: ParsedMail, view: RequestView) -> bool:
        """Tell an approver whose APPROVE / REJECT came after the request was settled what
        became of it (once per address and request an hour). True: sent."""
        key = keys.late_note(mail.sender, view.request.request_id)
        return await self._note(mail, view.request, key, late_reply(view), [])

    async def _note(
        self,
        mail: ParsedMail,
        record: RequestRecord,
        key: str,
        text: str,
        links: list[tuple[str, str]],
    ) -> bool:
        if not await self.redis.set(key, "sent", nx=True, ex=keys.REFUSAL_NOTE_TTL_SECONDS):
            return False
        try:
            agent = (await self.sender.port.meta(record.thread_id)).agent
        except ThreadNotFound:
            return False
        note = Outgoing(
            message_id=f"refused.{secrets.token_hex(8)}.{record.thread_id}@{self.sender.domain}",
            sender=(agent.capitalize(), self.sender.address(agent)),
            to=mail.sender,
            reply_to=self.sender.address(agent),
            subject=reply_subject(mail.subject, "Your reply was not accepted"),
            text=text,
            in_reply_to=mail.message_id,
            references=[mail.message_id] if mail.message_id else [],
            links=links,
        )
        try:
            await self.sender.relay_send(note)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.warning("could not tell %s why the reply did not decide: %s", mail.sender, exc)
            return False
        log.info("told %s why the reply did not decide %s", mail.sender, record.request_id)
        return True
