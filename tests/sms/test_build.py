"""The channel turns on from the environment, and only with everything it needs."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from agent.config import Registry
from agent.settings import Settings
from channels.registry import CHANNEL_MODULES, Services, build_channels
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.sms.conftest import ACCOUNT, OURS, PUBLIC, TOKEN


def _services(
    client: aioredis.Redis, store: ThreadStore, registry: Registry, public: str | None
) -> Services:
    return Services(
        Settings(public_base_url=public), client, ChannelPort(store, OutboxStore(client)), registry
    )


async def test_sms_channel_is_on_only_when_configured(
    monkeypatch: pytest.MonkeyPatch,
    redis_client: aioredis.Redis,
    store: ThreadStore,
    registry: Registry,
) -> None:
    assert "channels.sms" in CHANNEL_MODULES
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    services = _services(redis_client, store, registry, PUBLIC)
    assert build_channels(services, ("channels.sms",)) == []

    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", OURS)
    # Without a public URL no signature can be checked: the channel stays off.
    assert build_channels(_services(redis_client, store, registry, None), ("channels.sms",)) == []

    [channel] = build_channels(services, ("channels.sms",))
    assert channel.name == "sms"
    assert channel.sender is not None
    assert channel.sender.resend_when_unknown is False
    for close in channel.closers:
        await close()
