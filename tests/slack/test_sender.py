"""Slack out: the sender against the fake Web API; rate limits and faults through the outbox."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from agent.delivery import SendFailed
from channels.slack.sender import SlackSender
from model.records import Origin, OutboxItem
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack
from tests.slack.kit import ALICE, GENERAL, SlackKit, mention, thread_of


def _sender(fake: FakeSlack) -> SlackSender:
    return SlackSender(AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url))


def _item(text: str, *, channel: str = GENERAL, thread_ts: str | None = "1.000001") -> OutboxItem:
    route = {"team": "T0TEAM", "channel": channel}
    if thread_ts:
        route["thread_ts"] = thread_ts
    return OutboxItem(
        outbox_id="out_test",
        thread_id="th_test",
        kind="final",
        text=text,
        to=Origin(channel="slack", address=ALICE, route=route),
    )


async def test_rate_limited_post_is_retried_later_and_posted_once(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    service = slack_service
    fake_llm.script(step("done_for_now", message="all good"))
    slack_kit.fake.fail("chat.postMessage", 429, retry_after=1)
    slack_kit.fake.fail("chat.postMessage", 503)
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("status?", root))
    view = await service.settled(thread_of(GENERAL, root), "done")

    [out] = view.outbox
    assert (out.status, out.attempts) == ("sent", 3)
    assert len(slack_kit.fake.called("chat.postMessage")) == 3
    assert [p.text for p in slack_kit.fake.thread(GENERAL, root)] == ["all good"]


async def test_errors_map_to_transient_or_permanent(fake_slack: FakeSlack) -> None:
    sender = _sender(fake_slack)
    fake_slack.fail("chat.postMessage", 429, retry_after=7)
    with pytest.raises(SendFailed) as limited:
        await sender.send(_item("hi"))
    assert (limited.value.transient, limited.value.retry_after) == (True, 7.0)
    fake_slack.fail("chat.postMessage", 500)
    with pytest.raises(SendFailed) as down:
        await sender.send(_item("hi"))
    assert (down.value.transient, down.value.retry_after) == (True, None)
    with pytest.raises(SendFailed) as gone:
        await sender.send(_item("hi", channel="C0GONE"))
    assert gone.value.transient is False
    assert "channel_not_found" in gone.value.error
    assert fake_slack.messages == {}


async def test_long_text_is_split_and_a_retry_does_not_repeat_parts(fake_slack: FakeSlack) -> None:
    sender = _sender(fake_slack)
    paragraph = "word " * 199 + "end\n"  # 1,000 characters
    text = paragraph * 60 + "<last> & final"
    fake_slack.fail("chat.postMessage", 429, retry_after=1, after=1)  # part two is refused once
    with pytest.raises(SendFailed):
        await sender.send(_item(text))
    delivery = await sender.send(_item(text))

    posted = fake_slack.thread(GENERAL, "1.000001")
    assert len(posted) == 2  # part one was not posted again
    assert all(len(p.text) <= 39_000 for p in posted)
    assert all(len(b["text"]["text"]) <= 3000 for p in posted for b in p.blocks)
    assert posted[-1].text.endswith("&lt;last&gt; &amp; final")
    joined = "".join(p.text for p in posted).replace("\n", "")
    assert joined.count("end") == 60
    assert delivery.provider_id == f"{GENERAL}:{posted[0].ts}"
    assert delivery.refs == [f"{GENERAL}:{posted[1].ts}"]


async def test_approval_to_a_notify_user_goes_to_their_dm(fake_slack: FakeSlack) -> None:
    item = OutboxItem(
        outbox_id="out_a",
        thread_id="th_a",
        kind="approval",
        text="Approval needed: deploy(tag='v1.2.3', env='production')",
        to=Origin(channel="slack", address=ALICE),
        request_id="rq_1",
        tool="deploy",
        arguments={"tag": "v1.2.3", "env": "production"},
    )
    delivery = await _sender(fake_slack).send(item)
    [posted] = fake_slack.messages.values()
    assert posted.channel == "D0ALICE"
    assert posted.thread_ts is None
    assert delivery.provider_id == f"D0ALICE:{posted.ts}"
    assert any(b["type"] == "actions" for b in posted.blocks)


async def test_question_invites_a_reply_in_the_thread(fake_slack: FakeSlack) -> None:
    item = _item("Which environment?").model_copy(update={"kind": "question", "request_id": "rq"})
    await _sender(fake_slack).send(item)
    [posted] = fake_slack.messages.values()
    assert posted.text == "Which environment?"
    assert posted.blocks[-1]["elements"][0]["text"] == "Reply in this thread to answer."


async def test_a_post_whose_answer_is_lost_is_found_not_posted_again(
    slack_kit: SlackKit, slack_service: Service, fake_llm: FakeOpenAI
) -> None:
    """Slack posts the message, then the connection drops: the outbox's next attempt finds
    the message by its outbox id (conversations.replies) and settles it; one post in Slack."""
    fake_llm.script(step("done_for_now", message="all good"))
    slack_kit.fake.drop("chat.postMessage")
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("status?", root))
    view = await slack_service.settled(thread_of(GENERAL, root), "done")

    [posted] = slack_kit.fake.thread(GENERAL, root)
    assert posted.text == "all good"
    [out] = view.outbox
    assert (out.status, out.provider_id) == ("sent", f"{GENERAL}:{posted.ts}")
    assert len(slack_kit.fake.called("chat.postMessage")) == 1
    assert slack_kit.fake.called("conversations.replies")


async def test_find_posts_only_the_missing_parts_and_reads_a_dm_by_its_channel(
    fake_slack: FakeSlack,
) -> None:
    sender = _sender(fake_slack)
    text = ("word " * 199 + "end\n") * 60
    fake_slack.drop("chat.postMessage")  # part one goes out, its answer is lost
    with pytest.raises(SendFailed) as lost:
        await sender.send(_item(text))
    assert lost.value.transient
    fresh = _sender(fake_slack)  # another process: nothing remembered in memory
    assert await fresh.find(_item(text)) is None  # part two is missing
    delivery = await fresh.send(_item(text))
    posted = fake_slack.thread(GENERAL, "1.000001")
    assert len(posted) == 2
    assert [p.metadata for p in posted] == [
        {"event_type": "switchboard_outbox", "event_payload": {"outbox_id": "out_test", "part": n}}
        for n in (0, 1)
    ]
    assert await fresh.find(_item(text)) == delivery

    dm = _item("hello", thread_ts=None).model_copy(
        update={"outbox_id": "out_dm", "to": Origin(channel="slack", address=ALICE)}
    )
    assert await fresh.find(dm) is None
    sent = await fresh.send(dm)
    assert await _sender(fake_slack).find(dm) == sent
    assert sent.provider_id.startswith("D0ALICE:")


async def test_the_models_markdown_is_posted_as_mrkdwn(fake_slack: FakeSlack) -> None:
    text = "## Deployed\n**v1.2.3** is live, see [the log](https://ci.example.com/1).\n- <!here>"
    await _sender(fake_slack).send(_item(text))
    [posted] = fake_slack.messages.values()
    expected = (
        "*Deployed*\n*v1.2.3* is live, see <https://ci.example.com/1|the log>.\n• &lt;!here&gt;"
    )
    assert posted.text == expected
    assert posted.blocks[0]["text"] == {"type": "mrkdwn", "text": expected}
