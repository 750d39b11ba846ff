"""We own the context window: the thread is rendered by our templates, compactly.

A template is a versioned file, ``prompts/<agent>/<version>.j2``, with two blocks:
``system`` (who the agent is, its tools, the rules) and ``thread`` (the events). The same
events always render to the same text: no clock, no randomness.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from agent.errors import ConfigError
from agent.steps import ASK, DONE
from agent.tools import Agent
from model.events import (
    ERROR_EVENTS,
    AgentStep,
    ApprovalDue,
    DeliveryFailed,
    Event,
    FinalAnswer,
    HumanRequest,
    Offered,
    Question,
    Rejected,
    ToolResult,
)

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

# Events that prove the agent got past an error: once one follows an error, the error and
# the failed attempt that caused it leave the context.
_PROGRESS = (ToolResult, HumanRequest, FinalAnswer)


@dataclass(frozen=True)
class Context:
    """What the model is shown: chat messages, and the prompt version that produced them."""

    prompt: str
    messages: list[dict[str, str]]


def visible_events(events: Sequence[Event]) -> list[Event]:
    """Drop errors that a later success resolved, with the agent step that led to each."""
    last_progress = -1
    for i, event in enumerate(events):
        if isinstance(event, _PROGRESS):
            last_progress = i
    hidden: set[int] = set()
    for i, event in enumerate(events):
        if i < last_progress and isinstance(event, ERROR_EVENTS):
            hidden.add(i)
            if i > 0 and isinstance(events[i - 1], AgentStep):
                hidden.add(i - 1)
        # A failed delivery reaches the model as the reroute that answered it, once; who
        # was asked on a timer (stages, reminders) is the humans' business, not the model's.
        if isinstance(event, DeliveryFailed | ApprovalDue | Offered):
            hidden.add(i)
        # A rejection reaches the model as the tool's result; the response itself adds nothing.
        if isinstance(event, Rejected):
            hidden.add(i)
        # What the agent said or asked is shown once, as said or asked: the step that chose
        # it carries the same text again (a step whose message never went out stays).
        if _spoken_by_next(events, i):
            hidden.add(i)
    return [e for i, e in enumerate(events) if i not in hidden]


def _spoken_by_next(events: Sequence[Event], i: int) -> bool:
    step = events[i]
    if not isinstance(step, AgentStep) or i + 1 >= len(events):
        return False
    after = events[i + 1]
    if step.intent == DONE:
        return isinstance(after, FinalAnswer)
    return step.intent == ASK and isinstance(after, Question)


def _attr(value: Any) -> str:
    """A value as an attribute: JSON for structures, quotes escaped for strings."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return '"' + text.replace("&", "&amp;").replace('"', "&quot;") + '"'


@cache
def _environment(root: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["attr"] = _attr
    return env


def template(prompt: str, root: Path = PROMPTS_DIR) -> jinja2.Template:
    try:
        return _environment(root).get_template(f"{prompt}.j2")
    except jinja2.TemplateNotFound:
        raise ConfigError(f"prompt template {prompt!r} not found under {root}") from None


def render(agent: Agent, events: Sequence[Event], root: Path = PROMPTS_DIR) -> Context:
    """Render the model's context for this thread."""
    tmpl = template(agent.prompt, root)
    variables = {
        "agent": agent,
        "tools": list(agent.tools.values()),
        "events": visible_events(events),
    }
    ctx = tmpl.new_context(variables)
    system = "".join(tmpl.blocks["system"](ctx)).strip()
    thread = "".join(tmpl.blocks["thread"](ctx)).strip()
    return Context(
        prompt=agent.prompt,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": thread}],
    )
