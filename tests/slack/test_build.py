"""The channel switches on from the environment, and refuses half a configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from agent.config import Registry
from agent.errors import ConfigError
from agent.settings import Settings
from channels import registry
from channels.registry import Services, build_channels
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore

VARS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_AGENT")


@pytest.fixture
def services(
    redis_client: aioredis.Redis,
    store: ThreadStore,
    slack_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Services:
    monkeypatch.chdir(tmp_path)  # no .env from the working tree
    for name in VARS:
        monkeypatch.delenv(name, raising=False)
    return Services(
        Settings(), redis_client, ChannelPort(store, OutboxStore(redis_client)), slack_registry
    )


def test_registered_and_off_without_a_token(services: Services) -> None:
    assert "channels.slack" in registry.CHANNEL_MODULES
    assert build_channels(services, ("channels.slack",)) == []


def test_on_with_token_and_signing_secret(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    [slack] = build_channels(services, ("channels.slack",))
    assert slack.name == "slack"
    assert slack.sender is not None
    assert slack.mount is not None
    assert slack.listeners == []  # no app token: no Socket Mode


def test_half_a_configuration_is_refused(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        build_channels(services, ("channels.slack",))
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("SLACK_AGENT", "nobody")
    with pytest.raises(ConfigError, match="nobody"):
        build_channels(services, ("channels.slack",))
