"""plan(): every action the deterministic code can take, one row each (a pure function)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.reducer import (
    Action,
    Decide,
    Dispatch,
    Idle,
    RecordExpiry,
    RecordRejection,
    RunApproved,
    plan,
    resting_status,
)
from agent.reroute import Moot, NowhereLeft, OfferElsewhere, StillOffered
from model.events import (
    AgentStep,
    Answered,
    ApprovalRequest,
    Approved,
    DeliveryFailed,
    Event,
    FinalAnswer,
    LLMError,
    Question,
    Rejected,
    Rerouted,
    SystemNote,
    ToolError,
    ToolResult,
    UserMessage,
    load_events,
)

ORIGIN = "slack:U1"
AT = datetime(2026, 11, 1, tzinfo=UTC)
ASK = UserMessage(channel="slack", sender="U1", text="deploy v1 to prod", at=AT)
STEP = AgentStep(intent="deploy", arguments={"tag": "v1"}, prompt="p/v1", call_id="c1", at=AT)
APPROVAL = ApprovalRequest(
    request_id="rq1",
    text="Approval needed",
    tool="deploy",
    arguments={"tag": "v1"},
    call_id="c1",
    notify=["email:bob@x.test", "sms:+15550001111"],
    offered=["email:bob@x.test"],
    at=AT,
)
STAGED = APPROVAL.model_copy(update={"offered": ["email:bob@x.test"]})
APPROVED = Approved(
    request_id="rq1",
    channel="slack",
    responder="U1",
)
REJECTED = Rejected(
    request_id="rq1",
    channel="slack",
    responder="U1",
)
QUESTION = Question(request_id="rq2", text="Which env?", at=AT)
ANSWER = Answered(request_id="rq2", channel="slack", responder="U1", answer="staging")
DONE = ToolResult(call_id="c1", tool="deploy", output="deployed")
TIMEOUT = SystemNote(kind="timeout", text="expired", request_id="rq1")


def failed(target: str, outbox: str = "o1", request: str | None = "rq1") -> DeliveryFailed:
    channel, _, address = target.partition(":")
    return DeliveryFailed(
        outbox_id=outbox,
        message="approval" if request == "rq1" else "final",
        channel=channel,
        address=address,
        reason="bounced",
        request_id=request,
    )


def moved(outbox: str, to: str | None) -> Rerouted:
    return Rerouted(outbox_id=outbox, request_id="rq1", to=to, text="moved")


CASES: list[tuple[str, list[Event], dict[str, str], type[Action], object]] = [
    ("empty thread", [], {}, Idle, None),
    ("a message: ask the model", [ASK], {}, Decide, None),
    ("a step never dispatched", [ASK, STEP], {}, Dispatch, None),
    ("a step whose call is in the ledger", [ASK, STEP], {"c1": "done"}, Idle, None),
    ("waiting for approval", [ASK, STEP, APPROVAL], {}, Idle, None),
    ("approved, not run", [ASK, STEP, APPROVAL, APPROVED], {}, RunApproved, None),
    ("approved and run", [ASK, STEP, APPROVAL, APPROVED, DONE], {}, Decide, None),
    (
        "approved, ledger says started",
        [ASK, STEP, APPROVAL, APPROVED],
        {"c1": "started"},
        Idle,
        None,
    ),
    ("rejected, not recorded", [ASK, STEP, APPROVAL, REJECTED], {}, RecordRejection, None),
    ("expired, not recorded", [ASK, STEP, APPROVAL, TIMEOUT], {}, RecordExpiry, None),
    ("a question answered", [ASK, QUESTION, ANSWER], {}, Decide, None),
    ("a tool error: try again", [ASK, ToolError(tool="deploy", error="x")], {}, Decide, None),
    ("a model error: try again", [ASK, LLMError(kind="timeout", error="x")], {}, Decide, None),
    ("done for now", [ASK, FinalAnswer(text="ok")], {}, Idle, None),
    # reroutes: every failed delivery is answered once, before anything else
    (
        "failed at the first address: the next configured one",
        [ASK, STEP, STAGED, failed("email:bob@x.test")],
        {},
        OfferElsewhere,
        "sms:+15550001111",
    ),
    (
        "failed at every configured address: the origin",
        [
            ASK,
            STEP,
            STAGED,
            failed("email:bob@x.test"),
            moved("o1", "sms:+15550001111"),
            failed("sms:+15550001111", "o2"),
        ],
        {},
        OfferElsewhere,
        ORIGIN,
    ),
    (
        "failed everywhere, the origin too: escalate",
        [
            ASK,
            STEP,
            APPROVAL.model_copy(update={"notify": [], "offered": [ORIGIN]}),
            failed(ORIGIN),
        ],
        {},
        NowhereLeft,
        None,
    ),
    (
        "still offered elsewhere: nothing to move",
        [
            ASK,
            STEP,
            APPROVAL.model_copy(update={"offered": ["email:bob@x.test", ORIGIN]}),
            failed("email:bob@x.test"),
        ],
        {},
        StillOffered,
        (ORIGIN,),
    ),
    (
        "decided before the failure was seen: moot",
        [ASK, STEP, APPROVAL, APPROVED, failed("email:bob@x.test")],
        {},
        Moot,
        None,
    ),
    (
        "a final answer that did not arrive: escalate",
        [ASK, FinalAnswer(text="ok"), failed(ORIGIN, "o9", request=None)],
        {},
        NowhereLeft,
        None,
    ),
    (
        "the same failure reported twice is answered once",
        [
            ASK,
            STEP,
            STAGED,
            failed("email:bob@x.test"),
            moved("o1", "sms:+15550001111"),
            failed("email:bob@x.test"),
        ],
        {},
        Idle,
        None,
    ),
]


@pytest.mark.parametrize(
    ("events", "ledger", "kind", "detail"),
    [pytest.param(e, led, k, d, id=name) for name, e, led, k, d in CASES],
)
def test_plan(events: list[Event], ledger: dict[str, str], kind: type, detail: object) -> None:
    action = plan(events, ledger, ORIGIN)
    assert type(action) is kind
    if isinstance(action, OfferElsewhere):
        assert action.to == detail
    if isinstance(action, StillOffered):
        assert action.at == detail


def test_delivery_bookkeeping_leaves_the_resting_status_alone() -> None:
    waiting = [ASK, STEP, STAGED, failed("email:bob@x.test"), moved("o1", "sms:+1555")]
    assert resting_status(waiting) == "awaiting_human"
    done = [ASK, FinalAnswer(text="ok"), failed(ORIGIN, "o9", request=None)]
    assert resting_status(done) == "done"
    escalated = [*done, moved("o9", None), SystemNote(kind="escalation", text="nowhere")]
    assert resting_status(escalated) == "awaiting_human"


def test_a_log_written_by_version_0_1_still_loads_and_plans() -> None:
    """Stored events stay readable across versions (README: Compatibility)."""
    raw = (Path(__file__).parent / "golden" / "thread_v0_1.jsonl").read_bytes().splitlines()
    events = load_events(raw)
    # 0.1's human_request / human_response are read as today's variants.
    assert [e.type for e in events] == [
        "user_message",
        "agent_step",
        "approval_request",
        "system_note",
        "approved",
    ]
    request = next(e for e in events if isinstance(e, ApprovalRequest))
    assert (request.tool, request.call_id) == ("deploy", "call_a")
    assert request.offered == []  # asked before offers were recorded: read as the origin
    action = plan(events, {}, ORIGIN)
    assert isinstance(action, RunApproved)
    assert action.response.responder == "U1"
