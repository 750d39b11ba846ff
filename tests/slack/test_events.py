"""The lean route for humans' messages (channels/slack/events.py): it serves the common case
without bolt, from the first message (one auth.test tells it who the bot is), and hands bolt
everything else."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp

from model.events import UserMessage
from store.threads import ThreadStore
from tests.fakes.slack_server import BOT_ID, BOT_USER
from tests.slack.kit import GENERAL, SlackKit, mention, thread_of


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The event types (or request types) that reached bolt's dispatch."""
    seen: list[str] = []
    real = AsyncApp.async_dispatch

    async def counted(self: AsyncApp, req: Any) -> Any:
        body = req.body
        seen.append(str((body.get("event") or {}).get("type") or body.get("type")))
        return await real(self, req)

    monkeypatch.setattr(AsyncApp, "async_dispatch", counted)
    return seen


async def texts(store: ThreadStore, tid: str) -> list[str]:
    view = await store.thread(tid)
    return [e.text for e in [*view.events, *view.inbox] if isinstance(e, UserMessage)]


async def test_messages_skip_bolt_from_the_first(
    slack_kit: SlackKit, store: ThreadStore, dispatched: list[str]
) -> None:
    first = slack_kit.fake.next_ts()
    assert (await slack_kit.event(mention("deploy v1", first))).status_code == 200
    assert dispatched == []  # the lean route's own auth.test told it the bot's id

    second = slack_kit.fake.next_ts()
    r = await slack_kit.event(mention("deploy v2", second))
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        200,
        "",
        "text/plain;charset=utf-8",
    )
    reply = slack_kit.fake.next_ts()
    in_thread = {**mention("and v3", reply, thread_ts=second), "type": "message"}
    assert (await slack_kit.event(in_thread)).status_code == 200
    assert (await slack_kit.event(mention("deploy v2", second), retry=1)).status_code == 200
    assert slack_kit.channel is not None
    for close in slack_kit.channel.closers:  # the reactions, under way after the acks
        await close()

    assert dispatched == []
    assert await texts(store, thread_of(GENERAL, second)) == ["deploy v2", "and v3"]
    assert len(slack_kit.fake.called("auth.test")) == 1
    reacted = {c["timestamp"] for c in slack_kit.fake.called("reactions.add")}
    assert {first, second, reply} <= reacted


async def test_messages_at_once_on_a_new_process_share_one_auth_test(
    slack_kit: SlackKit, store: ThreadStore, dispatched: list[str]
) -> None:
    """Before the first answer, each message declined to bolt made bolt call auth.test
    itself: a burst on a new process was a burst of auth.test calls and of bolt requests."""
    stamps = [slack_kit.fake.next_ts() for _ in range(8)]
    sent = [slack_kit.event(mention(f"deploy v{n}", ts)) for n, ts in enumerate(stamps)]
    assert [r.status_code for r in await asyncio.gather(*sent)] == [200] * 8
    assert dispatched == []
    assert len(slack_kit.fake.called("auth.test")) == 1
    assert len(await store.thread_ids()) == 8


async def test_a_message_goes_to_bolt_while_auth_test_fails(
    slack_kit: SlackKit, store: ThreadStore, dispatched: list[str]
) -> None:
    slack_kit.fake.fail("auth.test", 500)  # the lean route's call; bolt's own one succeeds
    first = slack_kit.fake.next_ts()
    assert (await slack_kit.event(mention("deploy v1", first))).status_code == 200
    assert dispatched == ["app_mention"]
    second = slack_kit.fake.next_ts()
    assert (await slack_kit.event(mention("deploy v2", second))).status_code == 200
    assert dispatched == ["app_mention"]  # bolt's listener told the lean route the bot's id
    assert len(await store.thread_ids()) == 2


async def test_a_forged_message_makes_no_call_to_slack(
    slack_kit: SlackKit, dispatched: list[str]
) -> None:
    forged = await slack_kit.event(mention("x", slack_kit.fake.next_ts()), secret="wrong")
    assert forged.status_code == 401
    assert slack_kit.fake.called("auth.test") == []  # bolt refused it before authorizing


async def test_everything_but_a_humans_message_still_goes_to_bolt(
    slack_kit: SlackKit, store: ThreadStore, dispatched: list[str]
) -> None:
    await slack_kit.event(mention("deploy v1", slack_kit.fake.next_ts()))
    dm = {"type": "message", "channel": "D0ALICE", "channel_type": "im", "text": "hi"}
    ours = {**dm, "user": BOT_USER, "ts": slack_kit.fake.next_ts()}
    bot = {**dm, "bot_id": BOT_ID, "subtype": "bot_message", "ts": slack_kit.fake.next_ts()}
    edit = {**dm, "subtype": "message_changed", "ts": "1.4", "message": {"text": "x"}}
    for event in (ours, bot, edit):
        assert (await slack_kit.event(event)).status_code == 200
    forged = await slack_kit.event(mention("x", slack_kit.fake.next_ts()), secret="wrong")
    stale = await slack_kit.event(mention("x", "2.1"), at=int(time.time()) - 6 * 60)
    assert (forged.status_code, stale.status_code) == (401, 401)
    challenge = json.dumps({"type": "url_verification", "challenge": "c-1", "token": "t"})
    verified = await slack_kit.post(challenge.encode(), "application/json")
    assert verified.json() == {"challenge": "c-1"}
    big = await slack_kit.post(b"{" + b" " * 300_000 + b"}", "application/json")
    assert big.status_code == 413

    ignored, refused = ["message"] * 3, ["app_mention"] * 2
    assert dispatched == [*ignored, *refused, "url_verification"]
    assert len(await store.thread_ids()) == 1
