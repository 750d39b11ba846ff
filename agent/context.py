"""We own the context window: the thread is rendered by our templates, compactly.

A template is a versioned file, ``agent/prompts/<agent>/<version>.j2``, with two blocks:
``system`` (who the agent is, its tools, the rules) and ``thread`` (the events). The same
events always render to the same text: no clock, no randomness.

The context has a budget, ``Agent.context_tokens``, counting the system prompt, the thread
and the response schema (the tools' definitions). A thread that would pass it has its oldest
settled turns replaced by one summary line each (``agent.compaction``), inside an
``<earlier>`` element the template places; what was compacted is reported on the Context.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jinja2

from agent import fitting, tokens
from agent.compaction import Compaction
from agent.errors import ConfigError
from agent.fitting import NO_PRIOR, Earlier, Prior
from agent.steps import ASK, DONE, response_schema
from agent.tools import Agent
from model.events import (
    ERROR_EVENTS,
    AgentStep,
    ApprovalDue,
    CallDue,
    CallReported,
    CancelRequested,
    DeliveryFailed,
    Event,
    FinalAnswer,
    HumanRequest,
    Offered,
    Question,
    Rejected,
    Summarized,
    ToolResult,
)

# Inside the package, so a wheel carries them (agent/prompts/<agent>/<version>.j2).
PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"

# Events that prove the agent got past an error: once one follows an error, the error and
# the failed attempt that caused it leave the context.
_PROGRESS = (ToolResult, HumanRequest, FinalAnswer)


@dataclass(frozen=True)
class Context:
    """What the model is shown: chat messages, and the prompt version that produced them."""

    prompt: str
    messages: list[dict[str, str]]
    tokens: int = 0
    """What the messages and the response schema count, by ``counting``."""
    counting: str = ""
    compacted: Compaction | None = None
    """None: every visible event is shown as itself."""


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
        # was asked on a timer (stages, reminders) is the humans' business, not the model's;
        # a model-written summary shows as its turn's line once compacted (agent.fitting).
        if isinstance(event, DeliveryFailed | ApprovalDue | Offered | Summarized):
            hidden.add(i)
        # A started call's result reaches the model as its ToolResult / ToolError.
        if isinstance(event, CallReported | CallDue | CancelRequested):
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
        # Templates are versioned files that do not change under a running process; without
        # this every render stats the file to see whether it did.
        auto_reload=False,
    )
    env.filters["attr"] = _attr
    return env


def template(prompt: str, root: Path = PROMPTS_DIR) -> jinja2.Template:
    try:
        return _environment(root).get_template(f"{prompt}.j2")
    except jinja2.TemplateNotFound:
        raise ConfigError(f"prompt template {prompt!r} not found under {root}") from None


def render(
    agent: Agent,
    events: Sequence[Event],
    root: Path = PROMPTS_DIR,
    counter: tokens.Counter | None = None,
    prior: Prior = NO_PRIOR,
) -> Context:
    """Render the model's context for this thread, compacted to the agent's budget.

    ``prior``: the thread's compacted prefix from its snapshot, ``events`` then being the
    log after it (``agent.snapshot``); the text is the same as from the whole log.
    """
    tmpl = template(agent.prompt, root)
    counter = counter or tokens.counter()
    visible = visible_events(events)
    schema = _schema_count(counter, agent)
    system = _block(tmpl, agent, "system", visible, None)
    fixed = schema + _fixed_count(counter, system) + 2 * tokens.MESSAGE_OVERHEAD
    thread, used, compacted = fitting.fit(
        thread_block(tmpl, agent),
        agent.context_tokens,
        visible,
        fixed,
        counter,
        prior,
        fitting.summaries(events),
    )
    return Context(
        prompt=agent.prompt,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": thread}],
        tokens=used,
        counting=counter.method,
        compacted=compacted,
    )


@lru_cache(maxsize=64)
def _schema_count(counter: tokens.Counter, agent: Agent) -> int:
    """The response schema's tokens: the same for every run of an agent, so counted once
    (not serialized again on every render)."""
    return counter.count(json.dumps(response_schema(agent), separators=(",", ":")))


@lru_cache(maxsize=64)
def _fixed_count(counter: tokens.Counter, text: str) -> int:
    """The schema and system prompt are the same text run after run: counted once."""
    return counter.count(text)


def thread_block(tmpl: jinja2.Template, agent: Agent) -> fitting.Block:
    """The template's ``thread`` block, for some events and summary lines."""

    def block(events: Sequence[Event], earlier: Earlier | None) -> str:
        return _block(tmpl, agent, "thread", events, earlier)

    return block


def _block(
    tmpl: jinja2.Template,
    agent: Agent,
    name: str,
    events: Sequence[Event],
    earlier: Earlier | None,
) -> str:
    variables = {
        "agent": agent,
        "tools": list(agent.tools.values()),
        "events": events,
        "earlier": earlier,
    }
    return "".join(tmpl.blocks[name](tmpl.new_context(variables))).strip()
