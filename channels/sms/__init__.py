"""The SMS channel (Twilio): approve by text message, from any thread's channel.

On when TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER and PUBLIC_BASE_URL are
set (the last because webhook signatures are computed over the public URL).
"""

from __future__ import annotations

import logging

from channels.registry import Channel, Services
from channels.sms.fallback import Fallback
from channels.sms.inbound import SmsInbound
from channels.sms.routes import Webhooks
from channels.sms.sender import TwilioSender
from channels.sms.settings import SmsSettings
from channels.sms.state import SmsState

log = logging.getLogger("switchboard.sms")


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
    state = SmsState(services.redis, services.store)
    fallback = Fallback(services.store)
    sender = TwilioSender(settings, public_base_url, state, fallback)
    inbound = SmsInbound(services.store, services.outbox, state, services.registry, fallback)
    hooks = Webhooks(inbound, settings.twilio_auth_token.get_secret_value(), public_base_url)
    return Channel(
        name="sms", sender=sender, mount=hooks.mount, closers=[sender.close, fallback.close]
    )
