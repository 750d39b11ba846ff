"""The rendered context says each thing once."""

from __future__ import annotations

from agent.config import Registry
from agent.context import render
from model.events import AgentStep, Event, FinalAnswer, Question, UserMessage


def _thread(registry: Registry, events: list[Event]) -> str:
    agent = registry.get(None)
    assert agent is not None
    return render(agent, events).messages[-1]["content"]


def test_what_was_said_or_asked_shows_once(registry: Registry) -> None:
    events: list[Event] = [
        UserMessage(channel="rest", sender="alice", text="deploy something"),
        AgentStep(
            intent="request_more_information", arguments={"message": "Which tag?"}, prompt="p"
        ),
        Question(request_id="rq_1", text="Which tag?"),
        AgentStep(intent="done_for_now", arguments={"message": "Nothing to do."}, prompt="p"),
        FinalAnswer(text="Nothing to do."),
    ]
    thread = _thread(registry, events)
    assert thread.count("Which tag?") == 1
    assert thread.count("Nothing to do.") == 1
    assert "<asked>Which tag?</asked>" in thread
    assert "<said>Nothing to do.</said>" in thread


def test_a_decided_answer_that_never_went_out_stays(registry: Registry) -> None:
    events: list[Event] = [
        UserMessage(channel="rest", sender="alice", text="hi"),
        AgentStep(intent="done_for_now", arguments={"message": "Hello."}, prompt="p"),
    ]
    assert '<done_for_now message="Hello."/>' in _thread(registry, events)
