"""next_escalation(): what each due approval timer makes the run loop do (a pure decision)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.escalation import OfferStage, Remind, TimerMoot, next_escalation
from model.events import (
    ApprovalDue,
    ApprovalRequest,
    ApprovalStage,
    Approved,
    Event,
    Offered,
    Rerouted,
)

ORIGIN = "slack:C1"
AT = datetime(2026, 11, 1, tzinfo=UTC)
REQUEST = ApprovalRequest(
    request_id="rq1",
    text="Approval needed",
    tool="deploy",
    arguments={"tag": "v1"},
    call_id="c1",
    notify=["slack:U1", "sms:+15550001111", "email:oncall@x.test"],
    offered=["slack:U1"],
    stages=[
        ApprovalStage(notify=["slack:U1"]),
        ApprovalStage(notify=["sms:+15550001111"], after=60),
        ApprovalStage(notify=["email:oncall@x.test", "slack:U1"], after=120),
    ],
    remind_every=30,
    at=AT,
)
STAGE2 = ApprovalDue(timer="rq1:stage:1", request_id="rq1", kind="stage", n=1, at=AT)
STAGE3 = ApprovalDue(timer="rq1:stage:2", request_id="rq1", kind="stage", n=2, at=AT)
REMIND1 = ApprovalDue(timer="rq1:remind:1", request_id="rq1", kind="remind", n=1, at=AT)
REMIND2 = ApprovalDue(timer="rq1:remind:2", request_id="rq1", kind="remind", n=2, at=AT)
OFFERED2 = Offered(
    timer="rq1:stage:1", request_id="rq1", kind="stage", to=["sms:+15550001111"], text="", at=AT
)
REMINDED1 = Offered(timer="rq1:remind:1", request_id="rq1", kind="remind", to=[], text="", at=AT)
APPROVED = Approved(request_id="rq1", channel="slack", responder="U1", at=AT)
ROWS: list[tuple[str, list[Event], object]] = [
    ("nothing due", [REQUEST], None),
    ("a reminder goes to stage 1", [REQUEST, REMIND1], Remind(REMIND1, REQUEST, ("slack:U1",))),
    ("stage 2 is asked", [REQUEST, STAGE2], OfferStage(STAGE2, REQUEST, ("sms:+15550001111",))),
    (
        "after stage 2, reminders go there",
        [REQUEST, REMIND1, REMINDED1, STAGE2, OFFERED2, REMIND2],
        Remind(REMIND2, REQUEST, ("sms:+15550001111",)),
    ),
    (
        "a stage asks only who was not asked yet",
        [REQUEST, STAGE2, OFFERED2, STAGE3],
        OfferStage(STAGE3, REQUEST, ("email:oncall@x.test",)),
    ),
    (
        "a reroute's target counts as asked",
        [
            REQUEST,
            Rerouted(outbox_id="o1", request_id="rq1", to="sms:+15550001111", text=""),
            STAGE2,
        ],
        OfferStage(STAGE2, REQUEST, ()),
    ),
    ("decided meanwhile: moot", [REQUEST, APPROVED, REMIND1], TimerMoot(REMIND1)),
    ("unknown request: moot", [STAGE2], TimerMoot(STAGE2)),
    ("each timer is answered once", [REQUEST, STAGE2, OFFERED2], None),
]


@pytest.mark.parametrize(("name", "events", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_next_escalation(name: str, events: list[Event], expected: object) -> None:
    assert next_escalation(events, ORIGIN) == expected
