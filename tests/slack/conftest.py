"""Fixtures for the Slack channel: the fake Slack Web API, the channel mounted in the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from agent import config
from agent.config import Registry
from agent.llm import OpenAILLM
from agent.settings import Settings
from channels.app import create_app
from channels.registry import Services
from channels.rest import rest_channel
from channels.rest.auth import Access
from channels.rest.sender import RestSender
from channels.slack import SlackSettings, channel
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.conftest import Service, children
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack
from tests.slack.kit import ALICE, OPS, PUBLIC, SECRET, SlackKit

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="session")
def _fake_slack_server() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture
def fake_slack(_fake_slack_server: FakeSlack) -> FakeSlack:
    _fake_slack_server.reset()
    return _fake_slack_server


@pytest.fixture
def slack_registry(tmp_path: Path) -> Registry:
    """The example deploybot, with deploy approvable by Alice and the ops user group."""
    text = (ROOT / "switchboard.toml").read_text()
    assert 'approvers = ["rest:*"]' in text
    text = text.replace('approvers = ["rest:*"]', f'approvers = ["slack:{ALICE}", "slack:{OPS}"]')
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    return config.load(path)


@pytest.fixture
async def slack_kit(
    fake_slack: FakeSlack,
    redis_client: aioredis.Redis,
    store: ThreadStore,
    slack_registry: Registry,
) -> AsyncIterator[SlackKit]:
    services = Services(
        Settings(public_base_url=PUBLIC),
        redis_client,
        ChannelPort(store, OutboxStore(redis_client)),
        slack_registry,
    )
    settings = SlackSettings(
        slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET, slack_api_url=fake_slack.api_url
    )
    built = channel(services, settings)
    assert built is not None
    assert built.mount is not None
    port = ChannelPort(store, OutboxStore(redis_client))
    rest = rest_channel(port, slack_registry, Access())
    app = create_app(redis_client, slack_registry, access=Access(), channels=[rest])
    built.mount(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://switchboard"
    ) as http:
        kit = SlackKit(fake_slack, built, http)
        yield kit
        await kit.settle()


@pytest.fixture
async def slack_service(
    slack_kit: SlackKit,
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    slack_registry: Registry,
    redis_client: aioredis.Redis,
) -> Service:
    """Worker and outbox in the test's loop, with the Slack channel's sender."""
    assert slack_kit.channel.sender is not None
    senders = {"rest": RestSender(), "slack": slack_kit.channel.sender, **children(redis_client)}
    return await service_factory(llm, reg=slack_registry, senders=senders)
