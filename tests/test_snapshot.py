"""The snapshot (agent/snapshot.py): a run over it and the tail decides and renders what a run
over the whole log does, and it is the same whether built from the log or advanced run by run."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import replace

import pytest

from agent import prompts, snapshot
from agent.config import Registry
from agent.context import render
from agent.reducer import plan, resting_status
from agent.snapshot import Snapshot
from agent.tools import Agent
from model.events import (
    AgentStep,
    ApprovalRequest,
    Approved,
    DeliveryFailed,
    Event,
    Granted,
    Question,
    Rerouted,
    ToolError,
    ToolResult,
    ToolStarted,
    UserMessage,
)
from tests.test_compaction import _long, _round_trip

ORIGIN = "slack:C1"


def _ask(n: int) -> list[Event]:
    return [
        UserMessage(channel="slack", sender="U042", text=f"deploy v9.{n}"),
        AgentStep(
            intent="deploy", arguments={"tag": f"v9.{n}", "env": "prod"}, prompt="p", call_id="cq"
        ),
    ]


def _open_request() -> list[Event]:
    return [
        *_long(40),
        *_ask(0),
        ApprovalRequest(
            request_id="rq", text="Approve?", tool="deploy", arguments={}, call_id="cq"
        ),
    ]


def _error_streak() -> list[Event]:
    return [
        *_long(40),
        UserMessage(channel="slack", sender="U042", text="list the tags"),
        AgentStep(intent="list_tags", arguments={}, prompt="p", call_id="e1"),
        ToolError(call_id="e1", tool="list_tags", error="boom"),
        AgentStep(intent="list_tags", arguments={}, prompt="p", call_id="e2"),
        ToolError(call_id="e2", tool="list_tags", error="boom again"),
    ]


def _resolved_error() -> list[Event]:
    failed = [
        UserMessage(channel="slack", sender="U042", text="list the tags"),
        AgentStep(intent="list_tags", arguments={}, prompt="p", call_id="e1"),
        ToolError(call_id="e1", tool="list_tags", error="boom"),
    ]
    return [*_long(5), *failed, *_long(30)]


def _failed(outbox_id: str, target: str, request_id: str) -> DeliveryFailed:
    channel, _, address = target.partition(":")
    return DeliveryFailed(
        outbox_id=outbox_id, message="approval", channel=channel, address=address,
        reason="bounced", request_id=request_id,
    )  # fmt: skip


def _rerouted() -> list[Event]:
    moved = [
        _failed("o1", "email:a@x", "r7"),
        Rerouted(outbox_id="o1", request_id="r7", to=ORIGIN, text="offered at the origin"),
    ]
    trips = _long(30)
    late = _failed("o2", ORIGIN, "r3")  # about a request settled long ago: moot
    return [*trips[:52], *moved, *trips[52:], late]  # r7's trip is events 49-55


def _quorum_pending() -> list[Event]:
    trip = _ask(1)
    two = ApprovalRequest(
        request_id="rq2", text="Approve?", tool="deploy", arguments={}, call_id="cq", quorum=2
    )
    chat = [e for n in range(30) for e in _round_trip(100 + n)]
    late = Approved(request_id="rq2", channel="slack", responder="U008")
    first = Approved(request_id="rq2", channel="slack", responder="U007")
    return [*_long(10), *trip, two, first, *chat, late]


def _started_call() -> list[Event]:
    lost = [
        UserMessage(channel="slack", sender="U042", text="roll back"),
        AgentStep(intent="rollback", arguments={"env": "prod"}, prompt="p", call_id="lost"),
        Question(request_id="q1", text="anything else?"),
    ]
    return [*_long(3), *lost, *_long(30)]  # the question stays open: nothing passes it


def _two_prompts() -> list[Event]:
    old = [
        e.model_copy(update={"prompt": "deploybot/v2"}) if isinstance(e, AgentStep) else e
        for e in _long(20)
    ]
    return [*old, *_long(20)]


SHAPES: dict[str, Callable[[], list[Event]]] = {
    "settled": lambda: _long(60),
    "open request": _open_request,
    "error streak": _error_streak,
    "resolved error": _resolved_error,
    "after a reroute": _rerouted,
    "quorum pending": _quorum_pending,
    "started call": _started_call,
    "two prompt versions": _two_prompts,
}
LEDGER = {"lost": "started"}


@pytest.fixture(params=[16_000, 1_500], ids=["budget", "compacted"])
def agent(request: pytest.FixtureRequest, registry: Registry) -> Agent:
    return replace(registry.agents["deploybot"], context_tokens=request.param)


def _resumed(snap: Snapshot | None, log: list[Event]) -> list[Event]:
    return [*snap.carried, *log[snap.upto :]] if snap else log


@pytest.mark.parametrize("shape", SHAPES)
def test_a_run_over_the_snapshot_decides_and_renders_as_over_the_log(
    agent: Agent, shape: str
) -> None:
    log = SHAPES[shape]()
    snap = snapshot.build(agent, log)
    if shape != "started call":
        assert snap is not None
        assert snap.upto > 0
    events = _resumed(snap, log)
    assert plan(events, LEDGER, ORIGIN) == plan(log, LEDGER, ORIGIN)
    assert resting_status(events) == resting_status(log)
    prompt = prompts.assigned(agent, "th_1", log)
    assert prompts.assigned(agent, "th_1", events) == prompt
    tail = log[snap.upto :] if snap else log
    shown = render(agent, tail, prior=snap.prior() if snap else snapshot.NO_PRIOR)
    whole = render(agent, log)
    assert shown.messages == whole.messages
    assert shown.tokens == whole.tokens
    if shape != "started call":  # its open question keeps all after it verbatim: over budget
        assert shown.tokens <= agent.context_tokens
    assert shown.compacted == whole.compacted


@pytest.mark.parametrize("shape", SHAPES)
def test_the_snapshot_advanced_run_by_run_equals_the_one_built_from_the_log(
    agent: Agent, shape: str
) -> None:
    log = SHAPES[shape]()
    snap: Snapshot | None = None
    for end in range(7, len(log) + 1, 7):  # a run releases every few events
        nxt = snapshot.advance(agent, snap, _resumed(snap, log[:end]))
        if nxt is not None:
            assert nxt.upto > (snap.upto if snap else 0)
            snap = nxt
    nxt = snapshot.advance(agent, snap, _resumed(snap, log))
    assert (nxt or snap) == snapshot.build(agent, log)


def test_the_snapshot_stops_at_what_is_still_open(registry: Registry) -> None:
    agent = registry.agents["deploybot"]
    log = _quorum_pending()
    snap = snapshot.build(agent, log)
    assert snap is not None
    pending = next(i for i, e in enumerate(log) if isinstance(e, ApprovalRequest) and e.quorum == 2)
    assert snap.upto <= pending  # the approval still counting people stays in the tail
    # A long-running call still waiting for its result, with chat going on meanwhile: the
    # run loop finds the started call in the log when its result comes, so no cut passes it.
    job = [
        UserMessage(channel="slack", sender="U042", text="run the migration"),
        AgentStep(intent="migrate", arguments={}, prompt="p", call_id="job"),
        ToolStarted(call_id="job", tool="migrate", external_id="j-1"),
    ]
    waiting = [*_long(3), *job, *_long(30)]
    snap = snapshot.build(agent, waiting)
    at = waiting.index(job[-1])
    assert snap is None or snap.upto <= at
    started = snapshot.build(agent, _started_call())
    assert started is None or all(
        not isinstance(e, Question) for e in _started_call()[: started.upto]
    )


def test_the_snapshot_carries_what_the_reducer_reads_of_the_prefix() -> None:
    lost = AgentStep(intent="rollback", arguments={}, prompt="deploybot/v2", call_id="lost")
    done = AgentStep(intent="deploy", arguments={}, prompt="deploybot/v1", call_id="ok")
    prefix: list[Event] = [lost, done, ToolResult(call_id="ok", tool="deploy", output="ok")]
    # No result yet; the latest step per version.
    assert snapshot.carried([], [], prefix) == ([lost, done], ["lost"])
    result = ToolResult(call_id="lost", tool="rollback", output="ok")
    assert snapshot.carried([lost, done], ["lost"], [result]) == ([lost, done], [])
    # A grant covers later calls of its tool for the thread's life: the latest one per tool.
    old = Granted(request_id="rq1", tool="deploy", by=["ops"])
    new = Granted(request_id="rq2", tool="deploy", by=["oncall"])
    other = Granted(request_id="rq3", tool="rollback", by=["ops"])
    kept, _ = snapshot.carried([old, done], [], [other, new])
    assert kept == [done, other, new]


_OLD = Snapshot(
    version=0, upto=7, prompt="p", budget=1, counting="c", turns=1, events=1, carried=[],
    pieces=[],
)  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [b"", b"not compressed", zlib.compress(b"not json"), _OLD.stored().body],
    ids=["empty", "not compressed", "not json", "another version"],
)
def test_a_snapshot_that_cannot_be_read_is_none(body: bytes) -> None:
    assert snapshot.parse(body) is None


def test_a_snapshot_made_for_another_prompt_budget_or_counting_does_not_fit(
    registry: Registry,
) -> None:
    agent = registry.agents["deploybot"]
    snap = snapshot.build(agent, _long(60))
    assert snap is not None
    counter = snapshot.tokens.counter()
    assert snap.fits(agent, counter)
    assert not snap.fits(replace(agent, prompt="deploybot/v2"), counter)
    assert not snap.fits(replace(agent, context_tokens=1_000), counter)
    assert not snap.fits(
        agent, snapshot.tokens.ESTIMATE if counter.exact else replace(counter, method="other")
    )
    assert snapshot.parse(snap.stored().body) == snap
    trimmed = snapshot.build(replace(agent, context_tokens=1_500), _long(60))
    assert trimmed is not None
    assert any(p.text is None for p in trimmed.pieces)  # older turns: only their lines
    assert snapshot.parse(trimmed.stored().body) == trimmed
