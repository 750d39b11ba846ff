"""Texts out through Twilio's Messages API, with the official client, kept short.

Twilio has no idempotency key: a send whose outcome is unknown is never repeated
(``resend_when_unknown = False``), and only failures that surely sent nothing are retried.
"""

from __future__ import annotations

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from channels import deliveries
from channels.base import SendFailed
from channels.sms import segments
from channels.sms.fallback import Fallback
from channels.sms.http import HttpxTwilioClient, last_retry_after
from channels.sms.parse import OPTED_OUT_ERROR, PayloadError, e164
from channels.sms.settings import SmsSettings
from channels.sms.state import SmsState
from model.records import Delivery, OutboxItem
from store import keys as core_keys

CHANNEL = "sms"


def _retry_after(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


class TwilioSender:
    """Delivers outbox items addressed to ``sms:+E164``."""

    channel = CHANNEL
    resend_when_unknown = False

    def __init__(
        self, settings: SmsSettings, public_base_url: str, state: SmsState, fallback: Fallback
    ) -> None:
        assert settings.twilio_auth_token is not None
        self.settings = settings
        self.public = public_base_url.rstrip("/")
        self.state = state
        self.fallback = fallback
        self.http = HttpxTwilioClient(
            base_url=settings.twilio_api_url, timeout=settings.sms_timeout
        )
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=self.http,
        )

    async def send(self, item: OutboxItem) -> Delivery:
        try:
            number = e164(item.to.address)
        except PayloadError as exc:
            raise SendFailed(str(exc), transient=False) from None
        if await self.state.opted_out(number):
            await self._fall_back(item, f"{number} opted out of SMS")
            raise SendFailed(f"{number} has opted out of SMS (STOP)", transient=False)
        body = await self.render(item, number)
        try:
            message = await self.client.messages.create_async(
                to=number,
                from_=item.to.route.get("from") or self.settings.twilio_from_number,
                body=body,
                status_callback=f"{self.public}/twilio/status",
            )
        except TwilioRestException as exc:
            raise await self._refused(item, number, exc) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never reached Twilio: sending again cannot double a text.
            raise SendFailed(f"Twilio unreachable: {exc}", transient=True) from None
        except (httpx.HTTPError, TwilioException) as exc:
            # It may have gone out: without an idempotency key, a retry could send it twice.
            # The approval is offered on the origin too, in case the phone never got it.
            await self._fall_back(item, f"the text to {number} may not have arrived")
            raise SendFailed(f"outcome unknown: {exc}"[:300], transient=False) from None
        return Delivery(
            provider_id=str(message.sid),
            detail={"status": str(message.status), "segments": str(message.num_segments)},
        )

    async def lost(self, item: OutboxItem) -> None:
        """An attempt died with its sender: the phone may never have had it; ask on the origin."""
        await self._fall_back(item, f"an attempt to text {item.to.address} was interrupted")

    async def render(self, item: OutboxItem, number: str) -> str:
        """The text as the phone shows it: reply instructions kept, the rest shortened."""
        tail = ""
        if item.kind == "approval" and item.request_id:
            others = [
                p
                for p in await self.state.pending(number)
                if p.request.request_id != item.request_id
            ]
            code = await self.state.code_for(number, item.request_id)
            if others:
                tail = f"\nReply YES {code}, or NO {code} and a reason."
            else:
                tail = "\nReply YES, or NO and a reason."
        link = f"{self.public}/v1/threads/{item.thread_id}"
        return segments.fit(item.text, tail, self.settings.sms_segment_budget, link)

    async def _refused(self, item: OutboxItem, number: str, exc: TwilioRestException) -> SendFailed:
        status = int(exc.status)
        error = f"Twilio {status} (code {exc.code}): {exc.msg}"[:300]
        if status == 429 or status >= 500:
            return SendFailed(
                error, transient=True, retry_after=_retry_after(last_retry_after.get())
            )
        if exc.code == OPTED_OUT_ERROR:
            await self.state.opt_out(number)
            await self._fall_back(item, f"{number} opted out of SMS")
        else:
            await self._fall_back(item, f"the text to {number} failed: {error}")
        return SendFailed(error, transient=False)

    async def _fall_back(self, item: OutboxItem, reason: str) -> None:
        if item.kind != "approval" or not item.request_id:
            return
        outbox_key = core_keys.outbox(item.thread_id)

        async def recorded() -> bool:
            # Reroute once the outbox has recorded this failure, so one lease merges it all.
            status = await self.state.redis.hget(outbox_key, f"{item.outbox_id}:s")
            return status is not None and (
                status.decode() if isinstance(status, bytes) else status
            ) in ("failed", "unknown", "sent")

        deliveries.rerouted(item, "the thread's own channel")
        await self.fallback.soon(item.request_id, item.to, reason, after=recorded)

    async def close(self) -> None:
        await self.http.close()
