"""The email sender of the outbox: SMTP to the configured relay with aiosmtplib.

The Message-ID is derived from the outbox id, so a repeated attempt (after a crash mid-send)
carries the same id and mail clients show it once: ``resend_when_unknown`` is safe here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiosmtplib

from agent.config import Registry
from agent.delivery import SendFailed
from channels.approval_text import email_text
from channels.email.chain import MailChain
from channels.email.compose import Outgoing, build, reply_subject
from channels.email.tokens import Decision, Keyring
from channels.email.trust import patterns
from channels.pagelinks import PageLinks
from model.records import Delivery, OutboxItem
from store.errors import RequestNotFound
from store.port import ChannelPort

CHANNEL = "email"
_DECISIONS: tuple[tuple[str, Decision], ...] = (("Approve", "approve"), ("Reject", "reject"))
APPROVAL_HINT = "Reply APPROVE, or REJECT and a reason (on the first line of your reply)."


@dataclass(frozen=True)
class Relay:
    """Where outbound mail goes, from ``smtp://user:pass@host:port`` (``smtps://``: TLS)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> Relay:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_RELAY_URL must look like smtp://user:pass@host:port")
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )


class EmailSender:
    channel = CHANNEL
    resend_when_unknown = True

    def __init__(
        self,
        relay: Relay,
        port: ChannelPort,
        chain: MailChain,
        registry: Registry,
        keyring: Keyring,
        *,
        domain: str,
        public_base_url: str | None,
        link_ttl_s: int,
        timeout: float = 30.0,
        pages: PageLinks | None = None,
    ) -> None:
        self.relay = relay
        self.port = port
        self.chain = chain
        self.registry = registry
        self.keyring = keyring
        self.domain = domain.lower()
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.link_ttl_s = link_ttl_s
        self.timeout = timeout
        self.pages = pages
        """Links to the thread's read-only page, in approval mails."""

    async def compose(self, item: OutboxItem) -> Outgoing:
        """The mail for one outbox item, threaded into the conversation it belongs to."""
        meta = await self.port.meta(item.thread_id)
        thread = await self.chain.of(meta, CHANNEL)
        route = meta.origin.route if meta.origin.channel == CHANNEL else {}
        from_address = route.get("agent_address") or self.address(meta.agent)
        signer = await self.keyring.signer()
        text = item.text
        links: list[tuple[str, str]] = []
        if item.kind == "approval" and item.request_id:
            page = await self.pages.link(item.thread_id, item.created) if self.pages else None
            text = email_text(item, page) + "\n\n" + APPROVAL_HINT
            links = await self.links(item.request_id, item.to.address)
        first_line = item.text.strip().split("\n")[0][:120]
        return Outgoing(
            message_id=f"{item.outbox_id}.{item.thread_id}@{self.domain}",
            sender=(meta.agent.capitalize(), from_address),
            to=item.to.address,
            reply_to=f"reply+{signer.reply_token(item.thread_id, item.request_id)}@{self.domain}",
            subject=reply_subject(thread.subject, first_line),
            text=text,
            in_reply_to=thread.parent,
            references=thread.chain,
            links=links,
        )

    def address(self, agent_name: str) -> str:
        """The agent's own address: its first configured one, else ``<agent>@domain``."""
        agent = self.registry.get(agent_name)
        own = patterns(agent.settings, "email_addresses") if agent else None
        return own[0] if own else f"{agent_name}@{self.domain}"

    async def links(self, request_id: str, recipient: str) -> list[tuple[str, str]]:
        """One-click links, for a recipient who may decide, when we know our public URL."""
        if self.public_base_url is None:
            return []
        try:
            record = (await self.port.request(request_id)).request
        except RequestNotFound:
            return []
        if not record.may_answer(CHANNEL, recipient.lower()):
            return []
        signer = await self.keyring.signer()
        expires = int(time.time()) + self.link_ttl_s
        return [
            (
                label,
                f"{self.public_base_url}/email/approve/"
                + signer.link_token(request_id, decision, recipient.lower(), expires),
            )
            for label, decision in _DECISIONS
        ]

    async def relay_send(self, mail: Outgoing) -> None:
        """One mail through the relay; aiosmtplib's errors pass through."""
        await aiosmtplib.send(
            build(mail),
            sender=mail.sender[1],
            recipients=[mail.to],
            hostname=self.relay.host,
            port=self.relay.port,
            username=self.relay.username,
            password=self.relay.password,
            use_tls=self.relay.tls,
            local_hostname=self.domain,
            timeout=self.timeout,
        )

    async def send(self, item: OutboxItem) -> Delivery:
        mail = await self.compose(item)
        try:
            await self.relay_send(mail)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise SendFailed(
                f"recipient refused: {exc.recipients[0].message if exc.recipients else exc}",
                transient=any(400 <= c < 500 for c in codes),
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SendFailed(
                f"SMTP {exc.code}: {exc.message}", transient=400 <= exc.code < 500
            ) from None
        except (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPServerDisconnected,
            TimeoutError,
        ) as exc:
            raise SendFailed(f"relay unreachable: {exc}", transient=True) from None
        except aiosmtplib.SMTPException as exc:
            raise SendFailed(f"SMTP: {exc}", transient=False) from None
        except OSError as exc:
            raise SendFailed(f"relay unreachable: {exc}", transient=True) from None
        await self.chain.sent(item.thread_id, mail.message_id)
        return Delivery(provider_id=mail.message_id, detail={"to": mail.to})
