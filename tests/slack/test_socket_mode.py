"""Socket Mode: the same bolt app, fed over a WebSocket instead of signed HTTP requests."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from agent.config import Registry
from agent.settings import Settings
from channels.registry import Services
from channels.slack import SlackSettings, channel
from model.events import UserMessage
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN, BOT_USER, TEAM, FakeSlack
from tests.fakes.slack_socket import FakeSocketMode
from tests.slack.kit import GENERAL, mention, thread_of


async def test_socket_mode_event_is_stored_then_acknowledged(
    fake_slack: FakeSlack,
    redis_client: aioredis.Redis,
    store: ThreadStore,
    slack_registry: Registry,
) -> None:
    link = await FakeSocketMode().start()
    fake_slack.socket_url = link.url
    settings = SlackSettings(
        slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN, slack_api_url=fake_slack.api_url
    )
    services = Services(
        Settings(), redis_client, ChannelPort(store, OutboxStore(redis_client)), slack_registry
    )
    built = channel(services, settings)
    assert built is not None
    assert built.mount is None  # no signing secret: no HTTP endpoint to forge requests to
    [listen] = built.listeners
    stop = asyncio.Event()
    task = asyncio.create_task(listen(stop))
    try:
        await asyncio.wait_for(link.connected.wait(), 5)
        root = fake_slack.next_ts()
        body = {
            "type": "event_callback",
            "team_id": TEAM,
            "api_app_id": "A0APP",
            "event": mention("deploy v1.2.3 to staging", root),
            "event_id": "Ev0SOCKET",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }
        envelope = await link.send("events_api", body)
        await link.acked(envelope)
        view = await store.thread(thread_of(GENERAL, root))
        [message] = [e for e in [*view.events, *view.inbox] if isinstance(e, UserMessage)]
        assert message.text == "deploy v1.2.3 to staging"
        opened = [c for c in fake_slack.calls if c.method == "apps.connections.open"]
        assert [c.token for c in opened] == [APP_TOKEN]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await link.stop()
        for close in built.closers:
            await close()


async def test_socket_mode_that_cannot_connect_still_stops(
    fake_slack: FakeSlack,
    redis_client: aioredis.Redis,
    store: ThreadStore,
    slack_registry: Registry,
) -> None:
    settings = SlackSettings(
        slack_bot_token=BOT_TOKEN, slack_app_token="xapp-revoked", slack_api_url=fake_slack.api_url
    )
    services = Services(
        Settings(), redis_client, ChannelPort(store, OutboxStore(redis_client)), slack_registry
    )
    built = channel(services, settings)
    assert built is not None
    [listen] = built.listeners
    stop = asyncio.Event()
    task = asyncio.create_task(listen(stop))
    deadline = time.monotonic() + 5
    while not [c for c in fake_slack.calls if c.method == "apps.connections.open"]:
        assert time.monotonic() < deadline, "the listener never asked for a connection"
        await asyncio.sleep(0.02)
    stop.set()  # while the client waits to retry the refused connect
    await asyncio.wait_for(task, 5)
    for close in built.closers:
        await close()
