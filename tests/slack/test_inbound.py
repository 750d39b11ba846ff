"""Slack in: signed Events API callbacks through bolt into the store, and replies out to the
fake Slack Web API in the same Slack thread."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from model.events import HumanResponse, UserMessage
from store import keys
from store.threads import ThreadStore
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step
from tests.fakes.slack_server import BOT_ID, BOT_USER
from tests.slack.kit import ALICE, GENERAL, SlackKit, mention, thread_of


async def test_mention_gets_an_answer_in_its_thread(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    fake_llm.script(step("done_for_now", message="Hi! I deploy things <safely> & fast."))
    ts = slack_kit.fake.next_ts()
    r = await slack_kit.event(mention("hello, <#C0OPS|ops> see <https://x.example/a|the docs>", ts))
    assert r.status_code == 200, r.text

    tid = thread_of(GENERAL, ts)
    view = await service.settled(tid, "done")
    first = view.events[0]
    assert isinstance(first, UserMessage)
    assert (first.channel, first.sender, first.message_id) == ("slack", ALICE, ts)
    assert first.text == "hello, #ops see the docs (https://x.example/a)"
    assert view.meta.origin.route == {"team": "T0TEAM", "channel": GENERAL, "thread_ts": ts}

    posted = slack_kit.fake.thread(GENERAL, ts)
    assert [p.text for p in posted] == ["Hi! I deploy things &lt;safely&gt; &amp; fast."]
    assert posted[0].blocks[0]["text"]["text"] == posted[0].text
    assert view.outbox[0].provider_id == f"{GENERAL}:{posted[0].ts}"
    # bolt checked the token once, at the first request
    assert len(slack_kit.fake.called("auth.test")) == 1


async def test_reply_in_the_thread_continues_it(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    fake_llm.script(
        step("request_more_information", message="Which tag?"),
        step("done_for_now", message="ok"),
    )
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("deploy something", root))
    tid = thread_of(GENERAL, root)
    await service.settled(tid, "awaiting_human")
    assert slack_kit.fake.thread(GENERAL, root)[0].text == "Which tag?"

    reply = slack_kit.fake.next_ts()
    event = {
        "type": "message",
        "channel": GENERAL,
        "channel_type": "channel",
        "user": ALICE,
        "text": "v1.2.3 please",
        "ts": reply,
        "thread_ts": root,
    }
    assert (await slack_kit.event(event)).status_code == 200
    view = await service.settled(tid, "done")
    answers = [e for e in view.events if isinstance(e, HumanResponse)]
    assert [(a.responder, a.answer) for a in answers] == [(ALICE, "v1.2.3 please")]
    assert [r.status for r in view.requests] == ["answered"]
    assert '<answer from="U0ALICE">v1.2.3 please</answer>' in fake_llm.contexts()[-1]
    assert [p.text for p in slack_kit.fake.thread(GENERAL, root)] == ["Which tag?", "ok"]

    # A later reply, no question open: a plain message on the same thread.
    fake_llm.script(step("done_for_now", message="you're welcome"))
    await slack_kit.event({**event, "text": "thanks", "ts": slack_kit.fake.next_ts()})
    view = await service.settled(tid, "done")
    assert [e.text for e in view.events if isinstance(e, UserMessage)][-1] == "thanks"


def _dm(text: str, ts: str, thread_ts: str | None = None) -> dict[str, Any]:
    event = {
        "type": "message",
        "channel": "D0ALICE",
        "channel_type": "im",
        "user": ALICE,
        "text": text,
        "ts": ts,
    }
    return {**event, "thread_ts": thread_ts} if thread_ts else event


async def test_direct_messages_continue_one_conversation_answered_in_the_dm(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI, redis_client: aioredis.Redis
) -> None:
    """Top-level DMs continue the open conversation; the agent answers in the DM itself
    (no Slack thread); after its final answer, the next DM starts a new conversation."""
    service = slack_service
    fake_llm.script(
        step("request_more_information", message="Which environment?"),
        step("done_for_now", message="Staging runs v1.2.3"),
        step("done_for_now", message="Hello again"),
    )
    first = slack_kit.fake.next_ts()
    assert (await slack_kit.event(_dm("which version is deployed?", first))).status_code == 200
    tid = thread_of("D0ALICE", first)
    await service.settled(tid, "awaiting_human")
    answer = slack_kit.fake.next_ts()
    await slack_kit.event(_dm("staging", answer))  # top level, as people write in a DM
    view = await service.settled(tid, "done")
    assert [p.text for p in slack_kit.fake.thread("D0ALICE", None)] == [
        "Which environment?",
        "Staging runs v1.2.3",
    ]
    assert view.meta.origin.route == {"team": "T0TEAM", "channel": "D0ALICE"}
    assert [r.status for r in view.requests] == ["answered"]
    # A DM is remembered (a reply under it finds the conversation); the answer is not: it
    # reached the thread first as a message that might not be one (QuestionAsked).
    assert await redis_client.exists(keys.ref("slack", f"D0ALICE:{first}")) == 1
    assert await redis_client.exists(keys.ref("slack", f"D0ALICE:{answer}")) == 0

    later = slack_kit.fake.next_ts()
    await slack_kit.event(_dm("hi", later))
    await service.settled(thread_of("D0ALICE", later), "done")
    assert [e.text for e in view.events if isinstance(e, UserMessage)] == [
        "which version is deployed?"
    ]


async def test_retries_and_the_mention_message_pair_are_stored_once(
    slack_kit: SlackKit, store: ThreadStore
) -> None:
    root = slack_kit.fake.next_ts()
    first = mention("deploy v1.2.3 to staging", root)
    assert (await slack_kit.event(first, event_id="Ev1")).status_code == 200
    # Slack retries the same event (same event_id) when it saw no ack in time...
    assert (await slack_kit.event(first, event_id="Ev1", retry=1)).status_code == 200
    assert (await slack_kit.event(first, event_id="Ev1", retry=2)).status_code == 200
    # ...and the same mention also arrives as a plain message, with its own event id.
    as_message = {**first, "type": "message", "channel_type": "channel"}
    assert (await slack_kit.event(as_message, event_id="Ev2")).status_code == 200

    # In a thread, the message copy of a mention is a reply: it too is stored once.
    reply_ts = slack_kit.fake.next_ts()
    reply = mention("and tell me when done", reply_ts, thread_ts=root)
    assert (await slack_kit.event({**reply, "type": "message"}, event_id="Ev3")).status_code == 200
    assert (await slack_kit.event(reply, event_id="Ev4")).status_code == 200

    view = await store.thread(thread_of(GENERAL, root))
    texts = [e.text for e in [*view.events, *view.inbox] if isinstance(e, UserMessage)]
    assert texts == ["deploy v1.2.3 to staging", "and tell me when done"]


async def test_bots_and_edits_are_not_answered(slack_kit: SlackKit, store: ThreadStore) -> None:
    base = {"type": "message", "channel": "D0ALICE", "channel_type": "im", "text": "hi"}
    ignored: list[dict[str, Any]] = [
        {**base, "user": BOT_USER, "ts": "1.1"},  # ourselves
        {**base, "bot_id": BOT_ID, "subtype": "bot_message", "ts": "1.2"},
        {**base, "user": "U0OTHERBOT", "bot_id": "B0OTHER", "ts": "1.3"},  # another bot
        {**base, "subtype": "message_changed", "ts": "1.4", "message": {"text": "x"}},
        {**base, "subtype": "message_deleted", "ts": "1.5", "deleted_ts": "1.1"},
        {**base, "subtype": "channel_join", "user": ALICE, "ts": "1.6"},
        # a channel message that neither mentions us nor replies in our thread
        {
            "type": "message",
            "channel": GENERAL,
            "channel_type": "channel",
            "user": ALICE,
            "text": "lunch?",
            "ts": "1.7",
        },
        # a reply in a Slack thread we were never part of
        {
            "type": "message",
            "channel": GENERAL,
            "channel_type": "channel",
            "user": ALICE,
            "text": "+1",
            "ts": "1.9",
            "thread_ts": "1.8",
        },
    ]
    for event in ignored:
        r = await slack_kit.event(event)
        assert r.status_code == 200, event
    assert await store.thread_ids() == []  # no thread was made for any of them


async def test_forged_and_stale_requests_get_401_and_store_nothing(
    slack_kit: SlackKit, store: ThreadStore
) -> None:
    event = mention("deploy v1.2.3 to production", slack_kit.fake.next_ts())
    forged = await slack_kit.event(event, secret="not-the-secret")
    assert forged.status_code == 401
    stale = await slack_kit.event(event, at=int(time.time()) - 6 * 60)
    assert stale.status_code == 401
    unsigned = await slack_kit.http.post("/slack/events", json={"type": "event_callback"})
    assert unsigned.status_code == 401
    garbage = await slack_kit.post(b"{not json", "application/json", secret="wrong")
    assert garbage.status_code == 401
    assert await store.thread_ids() == []
    assert slack_kit.fake.calls == []  # refused before bolt even asked Slack who it is


async def test_url_verification_and_oversize(slack_kit: SlackKit) -> None:
    import json

    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"}).encode()
    r = await slack_kit.post(body, "application/json")
    assert r.status_code == 200
    assert r.json() == {"challenge": "c-123"}
    big = await slack_kit.post(b"{" + b" " * 300_000 + b"}", "application/json")
    assert big.status_code == 413


@pytest.mark.parametrize("route", ["bolt", "lean"])
async def test_no_ack_until_stored_and_the_retry_repairs_it(
    slack_kit: SlackKit, store: ThreadStore, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """Through bolt (its first event), and through the lean route that takes the ones after
    it (channels/slack/events.py): a failed write answers 500, and Slack's retry stores it."""
    if route == "lean":
        await slack_kit.event(mention("deploy v1", slack_kit.fake.next_ts()))
    before = await store.thread_ids()
    real = store.append_inbound

    async def redis_down(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(store, "append_inbound", redis_down)
    root = slack_kit.fake.next_ts()
    event = mention("deploy v1.2.3 to staging", root)
    failed = await slack_kit.event(event, event_id="Ev9")
    assert failed.status_code == 500  # no ack: Slack will retry
    assert await store.thread_ids() == before

    monkeypatch.setattr(store, "append_inbound", real)
    retried = await slack_kit.event(event, event_id="Ev9", retry=1)
    assert retried.status_code == 200
    view = await store.thread(thread_of(GENERAL, root))
    assert [e.text for e in view.inbox if isinstance(e, UserMessage)] == [
        "deploy v1.2.3 to staging"
    ]


async def test_an_answer_is_stored_once_across_retries_and_twins(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    fake_llm.script(
        step("request_more_information", message="Which tag?"),
        step("request_more_information", message="Which environment?"),
        step("done_for_now", message="ok"),
    )
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("deploy something", root))
    tid = thread_of(GENERAL, root)
    await service.settled(tid, "awaiting_human")

    # The answer mentions the bot, so it arrives twice (message and app_mention)...
    answer = mention("v1.2.3", slack_kit.fake.next_ts(), thread_ts=root)
    assert (await slack_kit.event({**answer, "type": "message"})).status_code == 200
    assert (await slack_kit.event(answer)).status_code == 200
    view = await service.settled(tid, "awaiting_human")
    assert [p.text for p in slack_kit.fake.thread(GENERAL, root)][-1] == "Which environment?"
    # ...and Slack retries it after the agent has asked its next question.
    assert (await slack_kit.event(answer, retry=1)).status_code == 200
    await slack_kit.event({**answer, "text": "staging", "ts": slack_kit.fake.next_ts()})
    view = await service.settled(tid, "done")

    answers = [e for e in view.events if isinstance(e, HumanResponse)]
    assert [a.answer for a in answers] == ["v1.2.3", "staging"]
    assert not [e for e in view.events if isinstance(e, UserMessage)][1:]
    assert [r.status for r in view.requests] == ["answered", "answered"]


def _edited(root: str, text: str, before: str) -> dict[str, Any]:
    message = {"type": "message", "user": ALICE, "text": text, "ts": root}
    return {
        "type": "message",
        "subtype": "message_changed",
        "channel": GENERAL,
        "channel_type": "channel",
        "hidden": True,
        "ts": f"{root}9",
        "message": {**message, "edited": {"user": ALICE, "ts": f"{root}9"}},
        "previous_message": {**message, "text": before},
    }


async def test_an_edit_before_the_answer_reaches_the_agent_as_a_correction(
    slack_kit: SlackKit, store: ThreadStore
) -> None:
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("deploy v1.2.3 to staging", root))
    edit = _edited(root, f"<@{BOT_USER}> deploy v1.2.4 to staging", "deploy v1.2.3 to staging")
    for _ in range(2):  # Slack's retry of the same edit event is stored once
        assert (await slack_kit.event(edit, event_id="EvEDIT1")).status_code == 200
    # Unchanged words (an unfurl added) are no correction.
    same = _edited(root, "deploy v1.2.3 to staging", "deploy v1.2.3 to staging")
    await slack_kit.event(same, event_id="EvEDIT2")

    view = await store.thread(thread_of(GENERAL, root))
    texts = [e.text for e in view.inbox if isinstance(e, UserMessage)]
    assert texts == [
        "deploy v1.2.3 to staging",
        "(Correction: I edited my previous message. It now reads:) deploy v1.2.4 to staging",
    ]


async def test_an_edit_after_the_answer_changes_nothing(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    fake_llm.script(step("done_for_now", message="staging is on v1.2.3"))
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("which version is on staging?", root))
    tid = thread_of(GENERAL, root)
    await slack_service.settled(tid, "done")
    edit = _edited(root, "which version is on production?", "which version is on staging?")
    assert (await slack_kit.event(edit)).status_code == 200
    view = await slack_service.store.thread(tid)
    assert view.inbox == []
    assert len([e for e in view.events if isinstance(e, UserMessage)]) == 1
