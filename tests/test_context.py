"""Context rendering: the thread as the model reads it, pinned as golden text."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as aioredis

from agent.config import Registry
from agent.context import _environment, render, visible_events, warm
from agent.llm import LLM
from agent.worker import Worker
from model.events import (
    AgentStep,
    Answered,
    ApprovalRequest,
    Event,
    FinalAnswer,
    LLMError,
    Question,
    Rejected,
    SystemNote,
    ToolError,
    ToolResult,
    UserMessage,
)
from store.threads import ThreadStore

GOLDEN = Path(__file__).parent / "golden"

THREAD: list[Event] = [
    UserMessage(channel="slack", sender="U042", text="deploy v1.2.3 to production"),
    LLMError(kind="invalid_output", error="arguments: Invalid JSON"),
    AgentStep(intent="list_tags", prompt="deploybot/v1", call_id="c1"),
    ToolResult(call_id="c1", tool="list_tags", output="v1.2.2\nv1.2.3"),
    AgentStep(
        intent="deploy",
        arguments={"tag": "v1.2.3", "env": "production"},
        prompt="deploybot/v1",
        call_id="c2",
    ),
    ApprovalRequest(
        request_id="r1",
        text="Approval needed",
        tool="deploy",
        arguments={"tag": "v1.2.3", "env": "production"},
        call_id="c2",
    ),
    Rejected(
        request_id="r1",
        channel="slack",
        responder="U007",
        comment="freeze until Monday",
    ),
    ToolResult(
        call_id="c2",
        tool="deploy",
        output="rejected by U007: freeze until Monday",
        outcome="rejected",
    ),
    AgentStep(
        intent="request_more_information",
        arguments={"message": "Staging instead?"},
        prompt="deploybot/v1",
    ),
    Question(request_id="r2", text="Staging instead?"),
    Answered(request_id="r2", channel="slack", responder="U042", answer='yes, "staging"'),
    AgentStep(
        intent="deploy",
        arguments={"tag": "v1.2.3", "env": "staging"},
        prompt="deploybot/v1",
        call_id="c3",
    ),
    ToolError(call_id="c3", tool="deploy", error="exit status 1: connection refused"),
    SystemNote(kind="merged_messages", text="1 message(s) arrived while the agent was working"),
]


@pytest.mark.parametrize("version", ["deploybot/v1", "deploybot/v2"])
def test_context_matches_golden(registry: Registry, version: str) -> None:
    """One golden file per prompt version: a template change shows as a diff in review."""
    context = render(replace(registry.agents["deploybot"], prompt=version), THREAD)
    assert context.prompt == version
    assert [m["role"] for m in context.messages] == ["system", "user"]
    text = "\n--- system / user ---\n".join(m["content"] for m in context.messages) + "\n"
    # To accept a deliberate prompt change: write `text` to the golden file and review the diff.
    golden = GOLDEN / f"{version.replace('/', '_')}_context.txt"
    assert text == golden.read_text()


def test_same_events_render_the_same(registry: Registry) -> None:
    agent = registry.agents["deploybot"]
    assert render(agent, THREAD) == render(agent, list(THREAD))


def test_resolved_errors_drop_out_but_current_ones_stay() -> None:
    shown = visible_events(THREAD)
    # The LLM error before list_tags succeeded is gone; the latest tool error is still there.
    assert not any(isinstance(e, LLMError) for e in shown)
    assert isinstance(shown[-2], ToolError)
    # A rejection reaches the model as the tool's result only.
    assert not any(isinstance(e, Rejected) for e in shown)


def test_failed_attempt_leaves_with_its_error() -> None:
    events: list[Event] = [
        UserMessage(channel="rest", sender="a", text="go"),
        AgentStep(intent="rollback", arguments={"env": "staging"}, prompt="p", call_id="x"),
        ToolError(call_id="x", tool="rollback", error="boom"),
        AgentStep(intent="rollback", arguments={"env": "staging"}, prompt="p", call_id="y"),
        ToolResult(call_id="y", tool="rollback", output="ok"),
        FinalAnswer(text="done"),
    ]
    shown = visible_events(events)
    assert [getattr(e, "call_id", None) for e in shown] == [None, "y", "y", None]


@pytest.mark.parametrize(
    "system",
    [
        "{{ events|length }} events so far",
        "{% for e in events %}{{ e.type }} {% endfor %}",
        "{% include 'deploybot/part.j2' %}",
        "{% import 'deploybot/part.j2' as part with context %}{{ part.n() }}",
    ],
)
def test_a_system_block_that_reads_the_thread_is_rendered_for_each_thread(
    registry: Registry, tmp_path: Path, system: str
) -> None:
    """The system prompt is rendered once per agent only when its block cannot see the events."""
    (tmp_path / "deploybot").mkdir()
    (tmp_path / "deploybot" / "part.j2").write_text(
        "{% macro n() %}{{ events|length }}{% endmacro %}{{ events|length }} events so far"
    )
    body = "{% for e in events %}{{ e.type }}\n{% endfor %}"
    source = (
        f"{{% block system %}}{system}{{% endblock %}}{{% block thread %}}{body}{{% endblock %}}"
    )
    (tmp_path / "deploybot" / "t.j2").write_text(source)
    agent = replace(registry.agents["deploybot"], prompt="deploybot/t")
    one = render(agent, THREAD[:1], root=tmp_path).messages[0]["content"]
    two = render(agent, THREAD[:3], root=tmp_path).messages[0]["content"]
    assert one != two


def test_a_system_block_that_reads_only_the_agent_is_the_same_for_every_thread(
    registry: Registry,
) -> None:
    agent = registry.agents["deploybot"]
    first, later = render(agent, THREAD[:1]), render(agent, THREAD)
    assert first.messages[0] == later.messages[0]
    assert first.tokens < later.tokens  # counted when read, the thread included


def test_warm_compiles_the_templates_a_prompt_imports_before_any_thread(
    registry: Registry, tmp_path: Path
) -> None:
    """A worker's start-up (``Worker.warm``) does the first render's compiling, of every
    prompt version of the agent, so no thread's first message waits for it."""
    (tmp_path / "deploybot").mkdir()
    (tmp_path / "deploybot" / "part.j2").write_text("{% macro n(e) %}{{ e.type }}{% endmacro %}")
    source = (
        "{% block system %}s{% endblock %}{% block thread %}{% import 'deploybot/part.j2' as"
        " part %}{% for e in events %}{{ part.n(e) }}{% endfor %}{% endblock %}"
    )
    for version in ("a", "b"):
        (tmp_path / "deploybot" / f"{version}.j2").write_text(source)
    agent = replace(
        registry.agents["deploybot"],
        prompt="deploybot/a",
        prompt_weights={"deploybot/a": 1, "deploybot/b": 1},
    )
    warm(agent, root=tmp_path)
    loaded = {name for _, name in _environment(tmp_path).cache or {}}
    assert {"deploybot/a.j2", "deploybot/b.j2", "deploybot/part.j2"} <= loaded
    assert render(agent, THREAD[:1], root=tmp_path).messages[1]["content"] == "user_message"


def test_a_worker_that_cannot_warm_an_agent_starts_anyway(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """What fails to render at start-up fails the agent's first run as it always did; the
    worker is not kept from starting by it."""
    agent = replace(registry.agents["deploybot"], prompt="deploybot/missing")
    worker = Worker(
        ThreadStore(aioredis.Redis()),  # nothing is sent: warm renders only
        Registry({"deploybot": agent}, "deploybot"),
        cast(LLM, None),
    )
    worker.warm()
    assert "could not render agent deploybot's context at start-up" in caplog.text
