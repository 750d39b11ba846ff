"""Texts out through Twilio's Messages API, with the official client, kept short.

Twilio has no idempotency key: a send whose outcome is unknown (a 5xx, a timeout, a sender
that died mid-call) is never repeated (``resend_when_unknown = False``); the text is looked
up in Twilio's message list instead (channels.sms.lookup), and if it is not there the outcome
is reported unknown, so the run loop offers the request elsewhere. Only failures that surely
sent nothing (connection refused, 429) are retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from agent.delivery import SendFailed
from channels.approval_text import sms_text
from channels.pagelinks import PageLinks
from channels.sms import segments
from channels.sms.http import HttpxTwilioClient, last_retry_after
from channels.sms.lookup import LookupFailed, sent_before
from channels.sms.parse import OPTED_OUT_ERROR, PayloadError, e164
from channels.sms.settings import SmsSettings
from channels.sms.state import SmsState
from model.records import Delivery, OutboxItem
from store.errors import ThreadNotFound

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
        self,
        settings: SmsSettings,
        public_base_url: str,
        state: SmsState,
        links: PageLinks,
        numbers: Mapping[str, str] | None = None,
    ) -> None:
        assert settings.twilio_auth_token is not None
        self.settings = settings
        self.numbers = dict(numbers or {})
        """Agent -> its own number (``sms_numbers``): where its texts go out from."""
        self.public = public_base_url.rstrip("/")
        self.state = state
        self.links = links
        """The thread page a shortened text links to (no API token needed on a phone)."""
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
            raise SendFailed(f"{number} has opted out of SMS (STOP)", transient=False)
        body = await self.render(item, number)
        from_ = await self._from(item)
        try:
            message = await self.client.messages.create_async(
                to=number, from_=from_, body=body, status_callback=self.callback(item)
            )
        except TwilioRestException as exc:
            if int(exc.status) < 500:
                raise await self._refused(item, number, exc) from None
            lost = f"Twilio {exc.status} (code {exc.code}): {exc.msg}"
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never reached Twilio: sending again cannot double a text.
            raise SendFailed(f"Twilio unreachable: {exc}", transient=True) from None
        except (httpx.HTTPError, TwilioException) as exc:
            lost = f"{type(exc).__name__}: {exc}"
        else:
            return Delivery(
                provider_id=str(message.sid),
                detail={"status": str(message.status), "segments": str(message.num_segments)},
            )
        # It may have gone out: without an idempotency key, a retry could send it twice.
        try:
            found = await sent_before(self.client, self.state.port, item, number, from_, body)
        except LookupFailed as exc:
            lost += f"; the message list could not be read ({exc})"
            found = None
        if found is not None:
            return found
        # Reported as an unknown outcome, the run loop offers it elsewhere too.
        raise SendFailed(f"outcome unknown: {lost}"[:300], transient=False, unknown=True)

    async def find(self, item: OutboxItem) -> Delivery | None:
        """The text an earlier attempt of ``item`` sent, from Twilio's message list."""
        try:
            number = e164(item.to.address)
        except PayloadError as exc:
            raise SendFailed(str(exc), transient=False) from None
        body = await self.render(item, number)
        try:
            return await sent_before(
                self.client, self.state.port, item, number, await self._from(item), body
            )
        except LookupFailed as exc:
            error = f"outcome unknown: the message list could not be read ({exc})"
            raise SendFailed(error, transient=False, unknown=True) from None

    def callback(self, item: OutboxItem) -> str:
        """The status callback URL, tagged with the item (Twilio signs the whole URL)."""
        query = urlencode({"t": item.thread_id, "o": item.outbox_id})
        return f"{self.public}/twilio/status?{query}"

    async def _from(self, item: OutboxItem) -> str:
        """The number texted (a reply goes out from it), else the agent's own number, else
        TWILIO_FROM_NUMBER: an approver's YES then comes back to the agent that asked."""
        if item.to.route.get("from"):
            return item.to.route["from"]
        if self.numbers:
            try:
                agent = (await self.state.port.meta(item.thread_id)).agent
            except ThreadNotFound:
                agent = ""
            if agent in self.numbers:
                return self.numbers[agent]
        return self.settings.twilio_from_number or ""

    async def render(self, item: OutboxItem, number: str) -> str:
        """The text as the phone shows it: reply instructions kept, the rest shortened."""
        tail = ""
        if item.kind == "approval" and item.request_id:
            others = [
                p
                for p in await self.state.pending(number)
                if p.request.request_id != item.request_id
            ]
            code = await self.state.code_for(number, item.request_id, item.outbox_id)
            said = f" {code}" if others else ""
            every = f", YES{said} ALL for the rest of the thread" if "thread" in item.grants else ""
            tail = f"\nReply YES{said}{every}, or NO{said} and a reason."
        # The item's own time fixes the link's expiry: the same item renders the same text,
        # which the lookup of an unknown outcome (sent_before) compares.
        link = await self.links.link(item.thread_id, item.created)
        body = sms_text(item)
        return segments.fit(body, tail, self.settings.sms_segment_budget, link)

    async def _refused(self, item: OutboxItem, number: str, exc: TwilioRestException) -> SendFailed:
        status = int(exc.status)
        error = f"Twilio {status} (code {exc.code}): {exc.msg}"[:300]
        if status == 429:
            return SendFailed(
                error, transient=True, retry_after=_retry_after(last_retry_after.get())
            )
        if exc.code == OPTED_OUT_ERROR:
            await self.state.opt_out(number)
        return SendFailed(error, transient=False)

    async def close(self) -> None:
        await self.http.close()
