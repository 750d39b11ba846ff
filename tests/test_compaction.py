"""Compaction: a long thread's context stays within its budget, open things stay verbatim."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent import compaction, tokens
from agent.config import Registry
from agent.context import render
from agent.tools import Agent
from model.events import (
    AgentStep,
    ApprovalRequest,
    Approved,
    Event,
    FinalAnswer,
    ToolError,
    ToolResult,
    UserMessage,
)
from tests.test_context import THREAD


def _round_trip(n: int) -> list[Event]:
    args = {"tag": f"v1.2.{n}", "env": "production"}
    call, rid = f"c{n}", f"r{n}"
    return [
        UserMessage(channel="slack", sender="U042", text=f"deploy v1.2.{n} to production"),
        AgentStep(intent="deploy", arguments=args, prompt="deploybot/v1", call_id=call),
        ApprovalRequest(
            request_id=rid, text="Approval", tool="deploy", arguments=args, call_id=call
        ),
        Approved(request_id=rid, channel="slack", responder="U007"),
        ToolResult(call_id=call, tool="deploy", output=f"deployed v1.2.{n} to production"),
        AgentStep(intent="done_for_now", arguments={"message": f"Deployed v1.2.{n}."}, prompt="p"),
        FinalAnswer(text=f"Deployed v1.2.{n}."),
    ]


def _long(turns: int) -> list[Event]:
    return [e for n in range(turns) for e in _round_trip(n)]


@pytest.fixture
def small(registry: Registry) -> Agent:
    return replace(registry.agents["deploybot"], context_tokens=2_000)


def test_a_short_thread_is_shown_whole(registry: Registry) -> None:
    ctx = render(registry.agents["deploybot"], THREAD)
    assert ctx.compacted is None
    assert "<earlier" not in ctx.messages[1]["content"]
    assert 0 < ctx.tokens <= registry.agents["deploybot"].context_tokens


@pytest.fixture(params=["exact", "estimate"])
def counter(request: pytest.FixtureRequest) -> tokens.Counter:
    if request.param == "estimate":
        return tokens.ESTIMATE
    if not tokens.counter().exact:
        pytest.skip("o200k_base is not on disk (python3 dev.py bench fetches it)")
    return tokens.counter()


@pytest.mark.parametrize("turns", [30, 300, 1_500])
def test_a_long_thread_fits_its_budget(small: Agent, turns: int, counter: tokens.Counter) -> None:
    events = _long(turns)
    ctx = render(small, events, counter=counter)
    assert ctx.counting == counter.method
    assert ctx.compacted is not None
    assert ctx.compacted.turns > 0
    assert ctx.tokens <= small.context_tokens
    # Counted again from scratch: the reported figure is the real one.
    assert ctx.tokens > counter.messages(ctx.messages)
    thread = ctx.messages[1]["content"]
    assert thread.startswith("<earlier turns=")
    # The latest turns stay verbatim.
    assert f"<said>Deployed v1.2.{turns - 1}.</said>" in thread
    assert f"<said>Deployed v1.2.{turns - 2}.</said>" in thread
    assert ctx == render(small, list(events), counter=counter)  # same events, same text


def test_summary_lines_say_what_happened(small: Agent) -> None:
    events = _long(30)
    whole = render(replace(small, context_tokens=100_000), events).tokens
    ctx = render(replace(small, context_tokens=whole - 200), events)
    assert ctx.compacted is not None
    assert ctx.compacted.omitted == 0
    thread = ctx.messages[1]["content"]
    assert (
        "U042 via slack: deploy v1.2.0 to production | deploy(tag=v1.2.0, env=production)"
        " | approved by U007 | deploy ok: deployed v1.2.0 to production | said: Deployed v1.2.0."
    ) in thread


def test_an_open_request_and_the_last_error_stay_verbatim(small: Agent) -> None:
    args = {"tag": "v9", "env": "production"}
    pending = [
        UserMessage(channel="slack", sender="U042", text="deploy v9 to production"),
        AgentStep(intent="deploy", arguments=args, prompt="p", call_id="c-open"),
        ApprovalRequest(
            request_id="r-open", text="Approval", tool="deploy", arguments=args, call_id="c-open"
        ),
    ]
    failed = [
        UserMessage(channel="slack", sender="U042", text="roll back staging"),
        AgentStep(intent="rollback", arguments={"env": "staging"}, prompt="p", call_id="c-err"),
        ToolError(call_id="c-err", tool="rollback", error="exit status 1: disk full"),
    ]
    # The open request comes early; many settled turns follow it, then the error.
    events = [*_long(5), *pending, *_long(40)[7 * 5 :], *failed]
    ctx = render(replace(small, context_tokens=4_000), events)
    thread = ctx.messages[1]["content"]
    assert ctx.compacted is not None
    assert 0 < ctx.compacted.events <= 7 * 5  # only turns before the open request
    assert '<awaiting_approval tool="deploy"/>' in thread
    assert '<deploy tag="v9" env="production"/>' in thread
    assert '<error tool="rollback">exit status 1: disk full</error>' in thread


def test_summaries_that_do_not_fit_are_counted_not_shown(small: Agent) -> None:
    ctx = render(replace(small, context_tokens=1_200), _long(400))
    assert ctx.compacted is not None
    assert ctx.compacted.omitted > 0
    assert ctx.tokens <= 1_200
    assert f'not_shown="{ctx.compacted.omitted}"' in ctx.messages[1]["content"]


def test_an_empty_thread_renders(small: Agent) -> None:
    # A thread read before its first message left the inbox has no events yet.
    ctx = render(small, [])
    assert ctx.compacted is None
    assert compaction.compactable([]) == []


def test_only_settled_turns_are_compactable() -> None:
    events = [*_round_trip(0), *_round_trip(1)[:3], *_round_trip(2), *_round_trip(3)]
    assert [(t.start, t.end) for t in compaction.compactable(events)] == [(0, 7)]


def test_the_estimate_counts_high() -> None:
    exact = tokens.counter()
    if not exact.exact:
        pytest.skip("o200k_base is not on disk (python3 dev.py bench fetches it)")
    for text in (render_text for render_text in _texts()):
        assert tokens.ESTIMATE.count(text) >= exact.count(text)


def _texts() -> list[str]:
    from agent import config
    from tests.conftest import ROOT

    agent = config.load(ROOT / "switchboard.toml").agents["deploybot"]
    return [m["content"] for m in render(agent, [*THREAD, *_long(20)]).messages]
