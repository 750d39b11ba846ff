"""``main.py check --live`` for SMS: Twilio knows the account and the credentials work."""

from __future__ import annotations

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from channels.sms.http import HttpxTwilioClient
from channels.sms.settings import SmsSettings


async def probe(settings: SmsSettings) -> str:
    """Fetch the account; its status ("active", "suspended"...) is what we report."""
    assert settings.twilio_account_sid is not None
    assert settings.twilio_auth_token is not None
    http = HttpxTwilioClient(base_url=settings.twilio_api_url, timeout=settings.sms_timeout)
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=http,
    )
    try:
        account = await client.api.v2010.accounts(settings.twilio_account_sid).fetch_async()
    except TwilioRestException as exc:
        raise RuntimeError(f"Twilio refused: HTTP {exc.status} {exc.msg}") from None
    finally:
        await http.client.aclose()
    if account.status != "active":
        raise RuntimeError(f"Twilio account {account.sid} is {account.status}")
    return f"account {account.friendly_name or account.sid} is active"
