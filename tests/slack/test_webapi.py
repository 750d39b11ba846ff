"""The channel's Web API client keeps one HTTP session for all its calls, and the sign of life
it makes stays a courtesy when Redis is away."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis

from channels.slack.webapi import KeptAliveClient
from channels.slack.working import Working
from store.embedded import free_port
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack
from tests.slack.kit import GENERAL


async def test_calls_share_one_session_until_closed(fake_slack: FakeSlack) -> None:
    client = KeptAliveClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    assert client.session is None  # made in the running loop, at first use
    await client.auth_test()
    session = client.session
    assert session is not None
    await client.reactions_add(channel=GENERAL, timestamp=fake_slack.next_ts(), name="eyes")
    assert client.session is session
    assert not session.closed
    await client.close()
    assert session.closed
    await client.auth_test()  # a call after close opens a new session
    assert client.session is not None
    assert client.session is not session
    await client.close()
    assert [c.method for c in fake_slack.calls] == ["auth.test", "reactions.add", "auth.test"]


async def test_the_sign_of_life_logs_a_lost_redis_and_raises_nothing(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    client = KeptAliveClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    gone = aioredis.Redis(port=free_port(), socket_connect_timeout=0.2)
    try:
        with caplog.at_level(logging.INFO, logger="switchboard.slack"):
            await Working(client, gone).show("th_gone", GENERAL, fake_slack.next_ts())
    finally:
        await client.close()
        await gone.aclose()
    assert fake_slack.called("reactions.add")
    assert "could not check the working sign of th_gone" in caplog.text
