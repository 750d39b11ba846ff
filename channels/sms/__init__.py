"""The SMS channel (Twilio): approve by text message, from any thread's channel.

Configuration (environment or .env); the channel is off unless the first four are set:

| name | what |
|---|---|
| `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` | the account; the token also signs webhooks |
| `TWILIO_FROM_NUMBER` | our number, E.164; point its messaging webhook at /twilio/sms |
| `PUBLIC_BASE_URL` | the URL Twilio calls; signatures are computed over it |
| `TWILIO_API_URL` | only to point the client elsewhere (tests) |
| `SMS_SEGMENT_BUDGET` | longer texts are shortened to this many segments (default 2) |

In switchboard.toml, a tool's ``approvers`` / ``notify`` take ``"sms:+15551234567"``; the
agent's ``settings.sms_senders`` lists further numbers allowed to talk to it (``"*"``: all),
and ``settings.sms_numbers`` its own Twilio numbers (each one's webhook at /twilio/sms too).
"""

from __future__ import annotations

import logging

from agent.config import Registry
from agent.errors import ConfigError
from agent.routing import own
from channels.pagelinks import page_links
from channels.registry import Channel, Services
from channels.sms.inbound import SmsInbound
from channels.sms.parse import PayloadError, e164
from channels.sms.routes import Webhooks
from channels.sms.sender import TwilioSender
from channels.sms.settings import SmsSettings
from channels.sms.state import SmsState

log = logging.getLogger("switchboard.sms")


def own_numbers(registry: Registry) -> dict[str, str]:
    """Agent -> the number its texts go out from: the first of its ``sms_numbers``.

    Raises ConfigError for a number that is not a phone number.
    """
    first: dict[str, str] = {}
    for name, agent in registry.agents.items():
        for number in own(agent.settings, "sms"):
            try:
                first.setdefault(name, e164(number))
            except PayloadError:
                raise ConfigError(
                    f"agent {name}: settings.sms_numbers: {number!r} is not an E.164 number"
                ) from None
    return first


SETTINGS = SmsSettings
"""The settings this channel reads; absent, the channel is off."""


def build(services: Services) -> Channel | None:
    settings = SmsSettings()
    if not settings.configured:
        return None
    if not services.settings.public_base_url:
        log.warning("channel sms: off; PUBLIC_BASE_URL is needed to check Twilio's signatures")
        return None
    return build_channel(services, settings, services.settings.public_base_url)


def build_channel(services: Services, settings: SmsSettings, public_base_url: str) -> Channel:
    """The channel from explicit settings (tests build it this way)."""
    assert settings.twilio_auth_token is not None
    state = SmsState(services.redis, services.port)
    numbers = own_numbers(services.registry)
    links = page_links(services.settings, services.redis, public_base_url)
    sender = TwilioSender(settings, public_base_url, state, links, numbers)
    inbound = SmsInbound(services.port, state, services.registry)
    hooks = Webhooks(inbound, settings.twilio_auth_token.get_secret_value(), public_base_url)
    return Channel(
        name="sms",
        sender=sender,
        mount=hooks.mount,
        closers=[sender.close],
    )
