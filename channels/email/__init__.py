"""The email channel: an SMTP server for mail in, a relay for mail out, links for approvals.

Mail to ``<agent>@EMAIL_DOMAIN`` starts a thread; replies continue it through the signed
``reply+<token>@EMAIL_DOMAIN`` address we set as Reply-To (or by In-Reply-To / References);
an approver answers an approval with APPROVE or REJECT, or with a one-click link.

Environment: EMAIL_DOMAIN (on/off), SMTP_LISTEN, SMTP_RELAY_URL, EMAIL_TRUSTED_AUTHSERV_IDS,
EMAIL_SECRET, EMAIL_MAX_BYTES, SMTP_TLS_CERT / SMTP_TLS_KEY (STARTTLS), SMTP_AUTH_USER /
SMTP_AUTH_PASSWORD (AUTH required, over TLS), PUBLIC_BASE_URL (links); see
settings.py. Per agent, in switchboard.toml::

    [agents.deploybot.settings]
    email_senders = ["alice@example.com", "@example.com"]   # who may write ("*": anyone);
                                               # unset: only the tools' email approvers
    email_addresses = ["deploy@example.com"]   # default: deploybot@EMAIL_DOMAIN
    email_domains = ["deploy.example.com"]     # every address there reaches this agent

    [agents.deploybot.tools.deploy]
    approvers = ["email:alice@example.com"]    # may approve by reply (authenticated) or link
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI

from channels.email.chain import MailChain
from channels.email.inbound import Inbound
from channels.email.links import router
from channels.email.refusals import Refusals
from channels.email.sender import EmailSender, Relay
from channels.email.server import Credentials, SmtpServer, tls_context
from channels.email.settings import EmailSettings
from channels.email.tokens import Keyring
from channels.pagelinks import page_links
from channels.registry import Channel, Services

log = logging.getLogger("switchboard.email")


@dataclass(frozen=True)
class EmailParts:
    """The pieces of the channel, for the service and for tests that drive them directly."""

    keyring: Keyring
    inbound: Inbound
    server: SmtpServer
    sender: EmailSender | None


SETTINGS = EmailSettings
"""The settings this channel reads; absent, the channel is off."""


def build(services: Services, settings: EmailSettings | None = None) -> Channel | None:
    """The channel, or None when EMAIL_DOMAIN is not set."""
    settings = settings or EmailSettings()
    if not settings.email_domain:
        return None
    parts = assemble(services, settings, settings.email_domain)

    def mount(app: FastAPI) -> None:
        app.include_router(router(services.port, parts.keyring, services.redis))

    return Channel(name="email", sender=parts.sender, mount=mount, shared=[parts.server])


def assemble(services: Services, settings: EmailSettings, domain: str) -> EmailParts:
    """Wire the channel's pieces from the settings."""
    secret = settings.email_secret.get_secret_value() if settings.email_secret else None
    keyring = Keyring(services.redis, secret)
    chain = MailChain(services.redis)
    inbound = Inbound(
        services.port,
        chain,
        services.registry,
        keyring,
        domain=domain,
        trusted_authserv_ids=settings.email_trusted_authserv_ids,
    )
    host, port = settings.listen
    server = SmtpServer(
        inbound,
        host,
        port,
        hostname=settings.smtp_hostname or domain,
        max_bytes=settings.email_max_bytes,
        tls=tls_context(settings.smtp_tls_cert, settings.smtp_tls_key),
        auth=(
            Credentials(settings.smtp_auth_user, settings.smtp_auth_password.get_secret_value())
            if settings.smtp_auth_user and settings.smtp_auth_password
            else None
        ),
    )
    sender = None
    if settings.smtp_relay_url is not None:
        sender = EmailSender(
            Relay.parse(settings.smtp_relay_url.get_secret_value()),
            services.port,
            chain,
            services.registry,
            keyring,
            domain=domain,
            public_base_url=services.settings.public_base_url,
            link_ttl_s=settings.email_link_ttl_s,
            timeout=settings.smtp_timeout_s,
            pages=page_links(services.settings, services.redis),
        )
        inbound.refusals = Refusals(sender, services.redis)
    else:
        log.warning("email: no SMTP_RELAY_URL, so mail is received but none is sent")
    if not settings.email_trusted_authserv_ids:
        log.warning("email: no EMAIL_TRUSTED_AUTHSERV_IDS, so approvals by reply are refused")

    return EmailParts(keyring, inbound, server, sender)
