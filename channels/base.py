"""What every channel's outbound side implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from model.records import Delivery, OutboxItem


class SendFailed(Exception):
    """A delivery attempt failed. ``transient``: worth trying again later."""

    def __init__(self, error: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.transient = transient
        self.retry_after = retry_after


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
class HandlesLost(Protocol):
    """A sender that can offer a message another way when an attempt of it was lost.

    The outbox calls ``lost`` when an attempt was cut off (its sender died mid-call) and the
    channel does not repeat sends whose outcome is unknown.
    """

    async def lost(self, item: OutboxItem) -> None: ...
