"""``main.py check --live`` for email: the outbound relay answers EHLO (and takes our login)."""

from __future__ import annotations

import aiosmtplib

from channels.email.sender import Relay
from channels.email.settings import EmailSettings

PROBE_TIMEOUT_S = 10.0


async def probe(settings: EmailSettings) -> str:
    """Connect to SMTP_RELAY_URL, EHLO, log in if it has a user; what the relay offers."""
    assert settings.smtp_relay_url is not None
    relay = Relay.parse(settings.smtp_relay_url.get_secret_value())
    client = aiosmtplib.SMTP(
        hostname=relay.host,
        port=relay.port,
        use_tls=relay.tls,
        timeout=PROBE_TIMEOUT_S,
        local_hostname=settings.smtp_hostname or settings.email_domain,
    )
    try:
        await client.connect()
        await client.ehlo()
        if relay.username and relay.password:
            await client.login(relay.username, relay.password)
        offered = ", ".join(sorted(client.esmtp_extensions)) or "no extensions"
    except aiosmtplib.SMTPException as exc:
        raise RuntimeError(f"relay {relay.host}:{relay.port}: {exc}") from None
    finally:
        if client.is_connected:
            await client.quit()
    return f"relay {relay.host}:{relay.port} answers EHLO ({offered})"
