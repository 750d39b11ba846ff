"""A sign of life: the "working" reaction on the human's message while the agent works, or
the assistant thread's status on Slack's AI-app surface; off when it answers."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from channels.slack import keys
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step
from tests.slack.kit import ALICE, GENERAL, SlackKit, mention, thread_of


def _names(command: Any) -> list[bytes]:
    """The names of the commands in one write (RESP arrays of bulk strings, as packed)."""
    raw = command if isinstance(command, bytes) else b"".join(command)
    names, at = [], 0
    while at < len(raw):
        end = raw.index(b"\r\n", at)
        count, at = int(raw[at + 1 : end]), end + 2
        for i in range(count):
            end = raw.index(b"\r\n", at)
            size, at = int(raw[at + 1 : end]), end + 2
            if i == 0:
                names.append(bytes(raw[at : at + size]).upper())
            at += size + 2
    return names


async def test_the_message_shows_a_reaction_until_the_answer_is_posted(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    fake_llm.script(step("done_for_now", message="all good"))
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("status?", root))
    await slack_service.settled(thread_of(GENERAL, root), "done")
    assert slack_kit.channel is not None
    for close in slack_kit.channel.closers:
        await close()

    order = [c.method for c in slack_kit.fake.calls if c.method.startswith(("reactions", "chat"))]
    assert order == ["reactions.add", "chat.postMessage", "reactions.remove"]
    [added] = slack_kit.fake.called("reactions.add")
    assert (added["channel"], added["timestamp"], added["name"]) == (GENERAL, root, "eyes")
    assert slack_kit.fake.reactions[(GENERAL, root)] == set()


def _dm_reply(root: str, ts: str, *, assistant: bool) -> dict[str, Any]:
    """A message in a thread of the app's DM; in an assistant thread, Slack adds
    ``assistant_thread`` to the event."""
    event: dict[str, Any] = {
        "type": "message",
        "channel": "D0ALICE",
        "channel_type": "im",
        "user": ALICE,
        "text": "status?",
        "ts": ts,
        "thread_ts": root,
    }
    if assistant:
        event["assistant_thread"] = {"action_token": "10116779555154.1013852547.9b39d433f"}
    return event


async def test_in_an_assistant_thread_the_status_says_the_agent_works(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    """Slack's AI-app surface: a message in an assistant thread (the event carries
    ``assistant_thread``) sets the thread's status, cleared when the answer is posted."""
    fake_llm.script(step("done_for_now", message="all good"))
    root, ts = slack_kit.fake.next_ts(), slack_kit.fake.next_ts()
    assert (await slack_kit.event(_dm_reply(root, ts, assistant=True))).status_code == 200
    await slack_service.settled(thread_of("D0ALICE", root), "done")
    await slack_kit.settle()

    calls = slack_kit.fake.calls
    order = [c.method for c in calls if c.method.startswith(("reactions", "chat", "assistant"))]
    assert order == [
        "assistant.threads.setStatus",
        "chat.postMessage",
        "assistant.threads.setStatus",
    ]
    first, cleared = slack_kit.fake.called("assistant.threads.setStatus")
    assert (first["channel_id"], first["thread_ts"], first["status"]) == (
        "D0ALICE",
        root,
        "is working on it...",
    )
    assert cleared["status"] == ""
    assert slack_kit.fake.statuses[("D0ALICE", root)] == ""
    [answer] = slack_kit.fake.thread("D0ALICE", root)
    assert answer.text == "all good"


async def test_a_thread_reply_in_a_dm_without_the_ai_surface_gets_the_reaction(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    fake_llm.script(step("done_for_now", message="all good"))
    root, ts = slack_kit.fake.next_ts(), slack_kit.fake.next_ts()
    assert (await slack_kit.event(_dm_reply(root, ts, assistant=False))).status_code == 200
    await slack_service.settled(thread_of("D0ALICE", root), "done")
    await slack_kit.settle()
    assert slack_kit.fake.called("assistant.threads.setStatus") == []
    assert [c["timestamp"] for c in slack_kit.fake.called("reactions.add")] == [ts]


DM_CHANNELS = ("D0ALICE", "D0ALICF", "D0ALICG")
"""Three conversations of one person, each started once."""


async def test_the_working_note_rides_with_the_message(
    slack_kit: SlackKit, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note that lets the answer clear the sign is written ahead of the message, in
    the pipeline that stores it: a mention costs the ack one round trip (and the sign,
    after the ack, one check); a DM, starting a conversation or continuing it, one more
    (the DM's mark): the message that continues one is stored on the condition that the
    thread never asked, not after a read of its open question and handoffs."""
    sent = [0]
    original = AbstractConnection._send_packed_command

    async def counted(self: AbstractConnection, command: Any) -> None:
        # Not counted: a write of only the change feed's PUBLISH (batched on its own), or of
        # the handshake of a connection the pool opens mid-test (HELLO, CLIENT SETINFO,
        # SELECT): a machine under load may need one more, which is no round trip of the
        # message's. A write that carries one of the message's commands beside them counts
        # (the previous message's PUBLISH, due 20 ms after it, may share its batch).
        if set(_names(command)) - {b"PUBLISH", b"HELLO", b"CLIENT", b"SELECT", b"AUTH"}:
            sent[0] += 1
        await original(self, command)

    # Warm up: bolt's auth.test, the first call of each script (NOSCRIPT, SCRIPT LOAD).
    event = {"type": "message", "channel_type": "im", "user": ALICE, "text": "hi"}
    await slack_kit.event(mention("warm up", slack_kit.fake.next_ts()))
    await slack_kit.event({**event, "channel": "D0OTHER", "ts": slack_kit.fake.next_ts()})
    await slack_kit.event({**event, "channel": "D0OTHER", "ts": slack_kit.fake.next_ts()})
    await slack_kit.settle()
    monkeypatch.setattr(AbstractConnection, "_send_packed_command", counted)

    async def fewest(events: list[dict[str, Any]]) -> int:
        """The fewest writes any of these messages cost: a write of something else running
        in the process (a periodic task landing inside one message's window, on a loaded
        machine) adds to one of them, a change of the message's path to all."""
        counts = []
        for each in events:
            sent[0] = 0
            assert (await slack_kit.event(each)).status_code == 200
            await slack_kit.settle()
            counts.append(sent[0])
        return min(counts)

    roots = [slack_kit.fake.next_ts() for _ in range(3)]
    assert await fewest([mention("status?", r) for r in roots]) == 2
    root = roots[-1]
    assert slack_kit.fake.reactions[(GENERAL, root)] == {"eyes"}

    # A DM starting a conversation, then (the same DM) one that goes on with it: is it the
    # answer to an open question?
    dms = [slack_kit.fake.next_ts() for _ in range(3)]
    starts = [{**event, "channel": c, "ts": t} for c, t in zip(DM_CHANNELS, dms, strict=True)]
    assert await fewest(starts) == 3
    dm = dms[0]
    more = [{**event, "channel": "D0ALICE", "ts": slack_kit.fake.next_ts()} for _ in range(3)]
    assert await fewest(more) == 3
    monkeypatch.undo()
    assert await redis_client.smembers(keys.working(thread_of(GENERAL, root))) == {
        f"{GENERAL}|{root}".encode()
    }
    assert slack_kit.fake.reactions[("D0ALICE", dm)] == {"eyes"}
