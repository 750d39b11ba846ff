"""What an approval message says beside the call (agent/briefs.py, channels/approval_text.py):
whom it @-mentions, who asked, how many approvals were given; table-driven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent import briefs
from channels.approval_text import email_text, sms_text
from model.events import ApprovalRequest, Approved, Event, UserMessage
from model.records import ApprovalBrief, Origin, OutboxItem

PEOPLE = {
    "slack:U0RM": "release-manager",
    "sms:+15551234567": "release-manager",
    "email:oncall@example.com": "oncall",
}


@pytest.mark.parametrize(
    ("asked", "approvers", "expected"),
    [
        (["slack:U0RM"], [], ["U0RM"]),
        # Asked by text, the same person is pinged in Slack through [people].
        (["sms:+15551234567"], [], ["U0RM"]),
        # A person with no Slack address: nobody in Slack is theirs; the approvers instead.
        (["email:oncall@example.com"], ["slack:U0OTHER", "slack:S0OPS"], ["U0OTHER", "S0OPS"]),
        # A channel asked, or nobody: the approvers' Slack users and groups, not "*".
        (["slack:C0DEPLOYS"], ["slack:*", "slack:W0GRID", "rest:*"], ["W0GRID"]),
        ([], ["sms:+15551234567"], ["U0RM"]),
        ([], ["rest:ops"], []),
    ],
)
def test_mentions(asked: list[str], approvers: list[str], expected: list[str]) -> None:
    assert briefs.mentions(asked, PEOPLE, approvers) == expected


ASK = ApprovalRequest(
    request_id="rq1", text="t", tool="deploy", arguments={}, call_id="c1", quorum=2
)
BEFORE = UserMessage(channel="slack", sender="U0A", text="deploy it")
AFTER = UserMessage(channel="slack", sender="U0B", text="any news?")


def _approved(person: str | None, responder: str = "U0RM") -> Approved:
    return Approved(request_id="rq1", channel="slack", responder=responder, person=person)


@pytest.mark.parametrize(
    ("events", "given"),
    [
        ([ASK], 0),
        ([ASK, _approved("release-manager")], 1),
        # The same person on two addresses counts once; another request's approval not at all.
        ([ASK, _approved("release-manager"), _approved("release-manager", "+1555")], 1),
        ([ASK, _approved(None), _approved(None, "U0X")], 2),
        ([ASK, _approved("x").model_copy(update={"request_id": "rq2"})], 0),
    ],
)
def test_approvals_given(events: list[Event], given: int) -> None:
    assert briefs.approvals_given(events, "rq1") == given


def test_asked_by_is_the_message_before_the_request() -> None:
    assert briefs.asked_by([BEFORE, ASK, AFTER], "rq1") == BEFORE
    assert briefs.asked_by([BEFORE, ASK, AFTER]) == AFTER  # asked now: the latest message
    assert briefs.said_of(UserMessage(channel="rest", sender="a", text="x " * 400)) is not None


ITEM = OutboxItem(
    outbox_id="out1",
    thread_id="th_1",
    kind="approval",
    text="Approval needed: deploy(tag='v1', env='prod')\n(reminder 1: still waiting)",
    to=Origin(channel="sms", address="+15551234567"),
    request_id="rq1",
    tool="deploy",
    arguments={"tag": "v1", "env": "prod"},
    brief=ApprovalBrief(
        agent="deploybot",
        requester="alice",
        said="deploy v1 to prod",
        approvals_needed=2,
        approvals_given=1,
        deadline=datetime(2026, 12, 2, 14, 2, tzinfo=UTC),
    ),
)


def test_texts_say_enough_to_decide() -> None:
    assert sms_text(ITEM) == (
        "deploybot: approve deploy(tag=v1, env=prod)?\n(reminder 1: still waiting)\n"
        '1 of 2 approvals given\nDecide by Dec 02 14:02 UTC\nAsked by alice: "deploy v1 to prod"'
    )
    mail = email_text(ITEM, "https://sb.example/t/th_1?exp=1&sig=x")
    assert mail.splitlines() == [
        "Approval needed: deploy(tag='v1', env='prod')",
        "",
        "    tag: v1",
        "    env: prod",
        "(reminder 1: still waiting)",
        "",
        'Asked by alice: "deploy v1 to prod"',
        "Agent deploybot, thread th_1",
        "Approvals given: 1 of 2",
        "Decide by 2026-12-02 14:02 UTC",
        "The whole thread (read-only): https://sb.example/t/th_1?exp=1&sig=x",
    ]
    # An item stored before briefs existed reads as it was written.
    old = ITEM.model_copy(update={"brief": None})
    assert sms_text(old) == old.text
    assert email_text(old, None) == old.text
