"""channels.observability in-process: /metrics reads the gauges from Redis; errors counted."""

from __future__ import annotations

import logging
import smtplib

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from agent.config import Registry
from channels.app import create_app
from channels.observability import channel_of
from channels.rest import rest_channel
from channels.rest.auth import Access
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.conftest import Service
from tests.email_helpers import DOMAIN, EmailHarness, mail

pytest_plugins = ("tests.email_fixtures",)


async def _pending(service: Service) -> float:
    text = (await service.api.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "switchboard_requests_pending" and s.labels["kind"] == "approval":
                return s.value
    raise AssertionError("no pending gauge")


async def test_the_pending_gauge_is_read_from_redis_at_scrape_time(service: Service) -> None:
    assert await _pending(service) == 0
    r = await service.api.post("/v1/threads", json={"message": "deploy v1.2.3 to production"})
    tid = r.json()["thread_id"]
    view = await service.settled(tid, "awaiting_human")
    assert await _pending(service) == 1
    rid = view.requests[0].request.request_id
    await service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    await service.settled(tid, "done")
    assert await _pending(service) == 0


async def test_redis_errors_are_counted(registry: Registry) -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
    rest = rest_channel(ChannelPort(ThreadStore(dead), OutboxStore(dead)), registry, Access())
    app = create_app(dead, registry, access=Access(), channels=[rest])
    before = REGISTRY.get_sample_value("switchboard_redis_errors_total", {"where": "api"}) or 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb") as c:
        assert (await c.get("/v1/threads")).status_code == 503
        scraped = await c.get("/metrics")  # still answers, without the Redis gauges
    after = REGISTRY.get_sample_value("switchboard_redis_errors_total", {"where": "api"})
    assert after == before + 1
    assert scraped.status_code == 200
    await dead.aclose()


@pytest.mark.parametrize(
    ("path", "channel"),
    [
        ("/v1/threads", "rest"),
        ("/slack/events", "slack"),
        ("/twilio/sms", "sms"),
        ("/email/approve/x", "email"),
        ("/metrics", None),
    ],
)
def test_paths_belong_to_channels(path: str, channel: str | None) -> None:
    assert channel_of(path) == channel


async def test_smtp_refusals_are_counted_by_reply_code(email: EmailHarness) -> None:
    labels = {"channel": "email", "reason": "550"}
    before = REGISTRY.get_sample_value("switchboard_inbound_refused_total", labels) or 0
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await email.send(mail("hello", to=f"nobody@{DOMAIN}"))
    assert REGISTRY.get_sample_value("switchboard_inbound_refused_total", labels) == before + 1


async def test_access_lines_name_the_thread_and_keep_polling_quiet(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="switchboard.access")
    r = await service.api.post("/v1/threads", json={"message": "hello"})
    tid = r.json()["thread_id"]
    await service.api.get(f"/v1/threads/{tid}")
    await service.api.get("/v1/threads/th_nope")
    lines = [
        (rec.levelname, rec.getMessage().split('"')[1], getattr(rec, "thread_id", None))
        for rec in caplog.records
        if rec.name == "switchboard.access"
    ]
    assert lines == [
        ("INFO", "POST /v1/threads HTTP/1.1", tid),
        ("DEBUG", f"GET /v1/threads/{tid} HTTP/1.1", None),
        ("INFO", "GET /v1/threads/th_nope HTTP/1.1", None),
    ]
