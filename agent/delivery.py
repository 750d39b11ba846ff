"""What every channel's outbound side implements: the core's outbox calls these."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from model.records import Delivery, OutboxItem


class SendFailed(Exception):
    """A delivery attempt failed. ``transient``: worth trying again later. ``unknown``: the
    provider may have taken it (a lost answer) on a channel that must not send twice."""

    def __init__(
        self,
        error: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        unknown: bool = False,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.transient = transient
        self.retry_after = retry_after
        self.unknown = unknown


class Sender(Protocol):
    """Delivers outbox items on one channel."""

    channel: str
    resend_when_unknown: bool
    """May an attempt whose outcome is unknown (the sender died mid-call) be repeated?
    True where the provider deduplicates or a repeat is harmless; False for SMS."""

    async def send(self, item: OutboxItem) -> Delivery:
        """Deliver one item; raise SendFailed on failure."""
        ...


@runtime_checkable
class Finds(Protocol):
    """A sender that can ask its provider whether an earlier attempt went out (a Slack post
    tagged with its outbox id, a text in Twilio's message list). The outbox asks before it
    repeats an attempt, so an outcome that was unknown is settled instead of sent twice."""

    async def find(self, item: OutboxItem) -> Delivery | None:
        """What an earlier attempt delivered, or None; raise SendFailed if it cannot tell."""
        ...
