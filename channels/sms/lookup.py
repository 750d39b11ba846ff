"""Did a text go out? Twilio's message list, read when a create's answer was lost.

Twilio has no idempotency key, and a 5xx or a timeout on message create does not say whether
the text was taken (Twilio documents that a 5xx may follow a created message). Before the
outcome is called unknown, the recent messages from our number to theirs are read: one with
the same body, created since the item was, that no other outbox item claims, is the one.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from model.records import Delivery, OutboxItem
from store.port import ChannelPort

CHANNEL = "sms"
RECENT = 20
"""Messages read per look-up (one page): a look-up follows its attempt within seconds."""
SKEW = timedelta(minutes=2)
"""Twilio's clock against ours: a text created this long before the item still counts."""


class LookupFailed(Exception):
    """The message list could not be read."""


async def sent_before(
    client: Client, port: ChannelPort, item: OutboxItem, to: str, from_: str, body: str
) -> Delivery | None:
    """The text Twilio created for ``item``, if it did."""
    try:
        recent = await client.messages.list_async(to=to, from_=from_, limit=RECENT)
    except (httpx.HTTPError, TwilioException) as exc:
        raise LookupFailed(f"{type(exc).__name__}: {exc}"[:200]) from None
    for message in recent:
        created = message.date_created
        if message.body != body or (created is not None and created < item.created - SKEW):
            continue
        ref = await port.resolve(CHANNEL, str(message.sid))
        if ref is not None and ref.outbox_id != item.outbox_id:
            continue  # the same words, sent for another item
        return Delivery(
            provider_id=str(message.sid),
            detail={"status": str(message.status), "found": "message list"},
        )
    return None
