"""Token usage on agent steps: optional fields, so logs stored before them still load."""

from __future__ import annotations

from agent.llm import Usage
from agent.steps import Decision
from channels.rest.api import TokenUsage
from model.events import AgentStep, dump_event, load_events

# An agent step as stored before usage was recorded.
OLD_STEP = (
    b'{"type":"agent_step","at":"2026-11-01T10:00:00Z","intent":"deploy",'
    b'"arguments":{"tag":"v1.2.3","env":"production"},"prompt":"deploybot/v1","call_id":"c1"}'
)


def test_a_step_stored_before_usage_loads_and_counts_no_tokens() -> None:
    (step,) = load_events([OLD_STEP])
    assert isinstance(step, AgentStep)
    assert (step.model, step.input_tokens, step.output_tokens, step.latency_ms) == (None,) * 4
    assert TokenUsage.of([step]) == TokenUsage(steps=1, input_tokens=0, output_tokens=0)


def test_usage_goes_onto_the_step_and_is_stored_with_it() -> None:
    decision = Decision("deploy", {}, usage=Usage("gpt-x", 812, 31, 640))
    step = AgentStep(intent="deploy", prompt="deploybot/v1", **decision.usage_fields())
    (loaded,) = load_events([dump_event(step)])
    assert loaded == step
    later = AgentStep(intent="done_for_now", prompt="deploybot/v1", input_tokens=900)
    assert TokenUsage.of([step, later]) == TokenUsage(steps=2, input_tokens=1712, output_tokens=31)


def test_a_model_that_reports_no_usage_leaves_the_fields_unset() -> None:
    assert Decision("deploy", {}).usage_fields() == {}
