"""What the outbox reports about each message: a span, a log line and a count per attempt.

A delivery joins its thread's trace (a child of the thread's root span), so the approval
request a human received four hours ago sits in the same trace as the run that asked it.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager

import redis.asyncio as aioredis

from agent.delivery import Sender, SendFailed
from model.records import Delivery, OutboxItem
from store import reporting
from telemetry import logs, metrics, tracing

log = logging.getLogger("switchboard.outbox")


def _about(item: OutboxItem) -> AbstractContextManager[None]:
    return logs.bound(thread_id=item.thread_id, channel=item.to.channel, request_id=item.request_id)


async def send(sender: Sender, item: OutboxItem, client: aioredis.Redis) -> Delivery:
    """``sender.send(item)``, reported; SendFailed passes through."""
    channel, to = item.to.channel, f"{item.to.channel}:{item.to.address}"
    parent = await reporting.thread_trace(client, item.thread_id)
    attributes = {
        tracing.CONVERSATION_ID: item.thread_id,
        "switchboard.channel": channel,
        "switchboard.outbox.kind": item.kind,
        "switchboard.request_id": item.request_id or "",
    }
    started = time.perf_counter()
    with (
        _about(item),
        tracing.span(f"deliver {channel}", parent=parent, attributes=attributes) as span,
    ):
        try:
            delivery = await sender.send(item)
        except SendFailed as exc:
            span.set_attribute("error.type", "transient" if exc.transient else "permanent")
            log.warning("%s to %s failed: %s", item.kind, to, exc.error, extra={"address": to})
            raise
        metrics.child(metrics.DELIVERIES, channel, item.kind).inc()
        span.set_attribute("switchboard.provider_id", delivery.provider_id)
        log.info(
            "%s delivered to %s in %.0f ms",
            item.kind,
            to,
            (time.perf_counter() - started) * 1000,
            extra={"address": to, "provider_id": delivery.provider_id},
        )
        return delivery


def found(item: OutboxItem, delivery: Delivery) -> None:
    """An earlier attempt whose outcome was unknown had gone out: settled, not sent again."""
    metrics.DELIVERIES.labels(item.to.channel, item.kind).inc()
    with _about(item):
        log.info("%s found delivered by an earlier attempt (%s)", item.kind, delivery.provider_id)


def retrying(item: OutboxItem, error: str, delay: float) -> None:
    metrics.DELIVERY_RETRIES.labels(item.to.channel).inc()
    with _about(item):
        log.info("%s will be tried again in %.1f s (%s)", item.kind, delay, error)


def gave_up(item: OutboxItem, status: str, error: str) -> None:
    metrics.DELIVERY_FAILURES.labels(item.to.channel, status).inc()
    with _about(item):
        log.warning("%s not delivered (%s): %s", item.kind, status, error)


def rerouted(item: OutboxItem, to: str) -> None:
    """For the dispatcher's reroute path: the item is offered at ``to`` instead."""
    metrics.REROUTES.labels(item.to.channel).inc()
    with _about(item):
        log.info("%s rerouted to %s", item.kind, to)
