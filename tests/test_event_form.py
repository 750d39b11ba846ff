"""The stored form of events, byte for byte: logs written today must read the same tomorrow,
and an event written twice (a retried commit) must be the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime

from model.events import (
    AgentStep,
    ApprovalRequest,
    ApprovalStage,
    Approved,
    Event,
    FinalAnswer,
    ToolResult,
    UserMessage,
    dump_event,
    load_events,
)

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
STAMP = b'{"at":1767323045678,'
"""A whole millisecond (every event's own clock: model.events.stamp): stored as a number."""
ISO_STAMP = b'{"at":"2026-01-02T03:04:05.678000Z",'
"""The form of every timestamp before, and of one a millisecond does not hold."""

FORMS: list[tuple[Event, bytes]] = [
    (
        UserMessage(at=AT, channel="slack", sender="U042", text="deploy v1.2.3", message_id="17.1"),
        b'"type":"user_message","channel":"slack","sender":"U042","text":"deploy v1.2.3",'
        b'"message_id":"17.1"}',
    ),
    (
        AgentStep(
            at=AT, intent="deploy", arguments={"tag": "v1.2.3"}, prompt="v1", call_id="call_a"
        ),
        b'"type":"agent_step","intent":"deploy","arguments":{"tag":"v1.2.3"},"prompt":"v1",'
        b'"call_id":"call_a"}',
    ),
    (
        ApprovalRequest(
            at=AT,
            request_id="rq_a",
            text="Approval needed: deploy(tag='v1.2.3')",
            tool="deploy",
            arguments={"tag": "v1.2.3"},
            call_id="call_a",
        ),
        b'"type":"approval_request","request_id":"rq_a",'
        b'"text":"Approval needed: deploy(tag=\'v1.2.3\')","tool":"deploy",'
        b'"arguments":{"tag":"v1.2.3"},"call_id":"call_a"}',
    ),
    (
        ApprovalRequest(
            at=AT,
            request_id="rq_b",
            text="Approval needed: deploy(tag='v1.2.4')",
            tool="deploy",
            arguments={"tag": "v1.2.4"},
            call_id="call_b",
            stages=[ApprovalStage(notify=["slack:U1"]), ApprovalStage(notify=["a"], after=60)],
            quorum=2,
            withdraw_on_message=True,
        ),
        b'"type":"approval_request","request_id":"rq_b",'
        b'"text":"Approval needed: deploy(tag=\'v1.2.4\')","tool":"deploy",'
        b'"arguments":{"tag":"v1.2.4"},"call_id":"call_b","stages":[{"notify":["slack:U1"]},'
        b'{"notify":["a"],"after":60.0}],"quorum":2,"withdraw_on_message":true}',
    ),
    (
        Approved(at=AT, request_id="rq_a", channel="slack", responder="U007"),
        b'"request_id":"rq_a","channel":"slack","responder":"U007","type":"approved"}',
    ),
    (
        ToolResult(at=AT, call_id="call_a", tool="deploy", output="deployed"),
        b'"type":"tool_result","call_id":"call_a","tool":"deploy","output":"deployed"}',
    ),
    (FinalAnswer(at=AT, text="Deployed."), b'"type":"final_answer","text":"Deployed."}'),
]


def test_events_are_stored_in_their_compact_form() -> None:
    for event, rest in FORMS:
        assert dump_event(event) == STAMP + rest


def test_the_stored_form_reads_back_as_the_same_events() -> None:
    events = [event for event, _ in FORMS]
    assert load_events([dump_event(e) for e in events]) == events


# As 0.3 wrote them: every default spelled out.
EARLIER_FORMS: list[tuple[bytes, Event]] = [
    (
        ISO_STAMP + b'"type":"approval_request","request_id":"rq_a",'
        b'"text":"Approval needed: deploy(tag=\'v1.2.3\')","tool":"deploy",'
        b'"arguments":{"tag":"v1.2.3"},"call_id":"call_a","notify":[],"offered":[],"stages":[],'
        b'"on_deadline":"expire","quorum":1,"withdraw_on_message":false,"editable":[],'
        b'"grants":[]}',
        FORMS[2][0],
    ),
    (
        ISO_STAMP + b'"type":"tool_result","call_id":"call_a","tool":"deploy","output":"deployed",'
        b'"outcome":"ok"}',
        FORMS[5][0],
    ),
    (
        ISO_STAMP + b'"type":"agent_step","intent":"done_for_now","arguments":{},"prompt":"v1"}',
        AgentStep(at=AT, intent="done_for_now", prompt="v1"),
    ),
]


def test_the_forms_earlier_versions_wrote_read_back_as_the_same_events() -> None:
    assert load_events([raw for raw, _ in EARLIER_FORMS]) == [e for _, e in EARLIER_FORMS]


def test_a_time_a_millisecond_does_not_hold_is_stored_as_before() -> None:
    event = FinalAnswer(at=AT.replace(microsecond=678123), text="Deployed.")
    stored = dump_event(event)
    assert (
        stored == b'{"at":"2026-01-02T03:04:05.678123Z","type":"final_answer","text":"Deployed."}'
    )
    assert load_events([stored]) == [event]


def test_an_events_own_clock_reads_to_the_millisecond() -> None:
    event = FinalAnswer(text="Deployed.")
    assert event.at.microsecond % 1000 == 0
    assert load_events([dump_event(event)]) == [event]
