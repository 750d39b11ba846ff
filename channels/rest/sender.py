"""REST has nowhere to push to: a message to a REST user is delivered by being recorded on the
thread, where ``GET /v1/threads/{id}`` shows it."""

from __future__ import annotations

from model.records import Delivery, OutboxItem


class RestSender:
    channel = "rest"
    resend_when_unknown = True

    async def send(self, item: OutboxItem) -> Delivery:
        # A REST user answers by request id, never by a message's id: nothing to map back.
        return Delivery(provider_id=item.outbox_id, mapped=False)
