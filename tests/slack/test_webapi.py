"""The channel's Web API client keeps one HTTP session for all its calls, and the sign of life
it makes stays a courtesy when Redis is away."""

from __future__ import annotations

import logging

import aiohttp
import pytest
import redis.asyncio as aioredis
from slack_sdk.errors import SlackApiError

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
    assert isinstance(session.cookie_jar, aiohttp.DummyCookieJar)  # as a session a call kept
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


async def test_the_lean_call_sends_what_slack_sdk_sends(fake_slack: FakeSlack) -> None:
    client = KeptAliveClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    ts = fake_slack.next_ts()
    try:
        await client.reactions_add(channel=GENERAL, timestamp=ts, name="eyes")
        await client.assistant_threads_setStatus(channel_id="D0A", thread_ts=ts, status="hm")
        await client.lean_call("reactions.add", {"channel": GENERAL, "timestamp": ts, "name": "x"})
        status = {"channel_id": "D0A", "thread_ts": ts, "status": "hm"}
        await client.lean_call("assistant.threads.setStatus", status, as_json=True)
    finally:
        await client.close()
    sdk_react, sdk_status, lean_react, lean_status = fake_slack.calls
    assert (lean_react.method, lean_react.token) == (sdk_react.method, sdk_react.token)
    assert lean_react.args == {**sdk_react.args, "name": "x"}
    assert (lean_status.method, lean_status.args) == (sdk_status.method, sdk_status.args)
    assert fake_slack.reactions[(GENERAL, ts)] == {"eyes", "x"}


async def test_the_lean_call_raises_what_slack_sdk_raises(fake_slack: FakeSlack) -> None:
    client = KeptAliveClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    args = {"channel": GENERAL, "timestamp": fake_slack.next_ts(), "name": "eyes"}
    fake_slack.fail("reactions.add", 429, retry_after=3)
    try:
        with pytest.raises(SlackApiError) as limited:
            await client.lean_call("reactions.add", args)
        await client.lean_call("reactions.add", args)
        with pytest.raises(SlackApiError) as again:
            await client.lean_call("reactions.add", args)
        fake_slack.drop("reactions.remove")  # done, then the answer cut off: not tried again
        with pytest.raises(aiohttp.ClientPayloadError):  # an aiohttp.ClientError, as from sdk
            await client.lean_call("reactions.remove", args)
        with pytest.raises(SlackApiError) as gone:
            await client.lean_call("reactions.remove", args)
    finally:
        await client.close()
    assert again.value.response.get("error") == "already_reacted"
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["retry-after"] == "3"  # any case, as slack_sdk's
    assert gone.value.response.get("error") == "no_reaction"
    assert [c.method for c in fake_slack.calls].count("reactions.remove") == 2
