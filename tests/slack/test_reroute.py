"""A Slack approval whose notify channel cannot be posted to is offered in the thread it
came from, by the run loop, with a note saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from agent.config import Registry
from model.events import DeliveryFailed, Rerouted
from tests.conftest import ROOT, Service
from tests.slack.kit import ALICE, GENERAL, SlackKit, mention, thread_of

GONE = "C0GONE42"  # the fake Slack answers channel_not_found for it


@pytest.fixture
def slack_registry(tmp_path: Path) -> Registry:
    text = (ROOT / "switchboard.toml").read_text()
    text = text.replace(
        'approvers = ["rest:*"]', f'approvers = ["slack:{ALICE}"]\nnotify = ["slack:{GONE}"]'
    )
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    return config.load(path)


async def test_channel_not_found_is_offered_in_the_origin_thread(
    slack_kit: SlackKit, slack_service: Service
) -> None:
    root = slack_kit.fake.next_ts()
    r = await slack_kit.event(mention("please deploy v1.2.3 to production", root))
    assert r.status_code == 200, r.text
    tid = thread_of(GENERAL, root)

    def offered(view: object) -> bool:
        # The notice to the requester and the approval offered here, both posted.
        return len(slack_kit.fake.thread(GENERAL, root)) == 2 and any(
            isinstance(e, Rerouted)
            for e in view.events  # type: ignore[attr-defined]
        )

    view = await slack_service.wait(tid, offered, within=5)
    [failure] = [e for e in view.events if isinstance(e, DeliveryFailed)]
    assert failure.target == f"slack:{GONE}"
    assert failure.reason == "chat.postMessage: channel_not_found"
    [rerouted] = [e for e in view.events if isinstance(e, Rerouted)]
    assert rerouted.to == f"slack:{ALICE}"
    assert "channel_not_found" in rerouted.text
    posted = slack_kit.fake.thread(GENERAL, root)
    # The requester heard the approval went to the channel, and the approval came here too.
    # (The approval @-mentions its approver, Alice, first.)
    texts = {p.text.removeprefix(f"<@{ALICE}> "): p for p in posted}
    assert sorted(t.split(":")[0] for t in texts) == [
        "Approval needed",
        "Waiting for approval from slack",
    ]
    [offer] = [p for t, p in texts.items() if t.startswith("Approval needed")]
    assert "channel_not_found" in offer.text
    assert f"who may approve: slack:{ALICE}" in offer.text

    # Alice approves from the origin thread: the deploy runs once.
    rid = failure.request_id
    assert rid is not None
    await slack_kit.click(ALICE, "sb_approve", rid, GENERAL, offer.ts, root)
    view = await slack_service.settled(tid, "done")
    assert sum(e.type == "tool_result" for e in view.events) == 1
