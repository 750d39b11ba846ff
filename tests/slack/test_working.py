"""The "working" reaction: on the human's message while the agent works, off when it answers."""

from __future__ import annotations

from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step
from tests.slack.kit import GENERAL, SlackKit, mention, thread_of


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
