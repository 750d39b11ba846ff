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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import new_context

from agent import fitting, prompts, tokens
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
    UserMessage,
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
    counting: str = ""
    compacted: Compaction | None = None
    """None: every visible event is shown as itself."""
    _count: Callable[[], int] = field(default=lambda: 0, repr=False, compare=False)

    @cached_property
    def tokens(self) -> int:
        """What the messages and the response schema count, by ``counting``.

        Counted on first read: a thread that fits by its bytes alone is not counted to be
        decided on (the model call does not need the figure; a preview of the context does).
        """
        return self._count()


def visible_events(events: Sequence[Event]) -> list[Event]:
    """Drop errors that a later success resolved, with the agent step that led to each."""
    if not any(_hides(kind) for kind in {type(e) for e in events}):
        return list(events)  # nothing below could hide anything: every event is shown
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


# Kinds of event the passes of visible_events act on: errors, what is always hidden, and
# what a step's words are shown as (``_spoken_by_next``). A thread holding none of them
# (most, before the agent answers) shows every event, and is not scanned event by event:
# the scan was about a tenth of a render.
_HIDDEN = (
    *ERROR_EVENTS, DeliveryFailed, ApprovalDue, Offered, Summarized, CallReported, CallDue,
    CancelRequested, Rejected, FinalAnswer, Question,
)  # fmt: skip


@cache
def _hides(kind: type[Event]) -> bool:
    """Whether an event of this class may hide itself or another (``isinstance``'s sense)."""
    return issubclass(kind, _HIDDEN)


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


@cache
def template(prompt: str, root: Path = PROMPTS_DIR) -> jinja2.Template:
    # Kept here too: Environment.get_template looks in its own cache under a lock, with a
    # weak reference to the loader in the key, on every render and snapshot. The environment
    # never reloads a template (auto_reload=False), so neither does this.
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
    if _reads_thread(tmpl, "system"):
        system = _block(tmpl, agent, "system", visible, None)
    else:
        system = _fixed_block(tmpl, agent, "system")
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
        counting=counter.method,
        compacted=compacted,
        _count=_counted(used) if used is not None else _counting(counter, thread, fixed),
    )


def warm(agent: Agent, root: Path = PROMPTS_DIR) -> None:
    """Render a one-message thread with each of the agent's prompt versions, once, at a
    worker's start-up. The first render of a version does what every later one reuses:
    it compiles the templates its template imports (``config.load`` only compiles the
    template itself), decides whether the system block reads the thread, counts the
    response schema and the system block. For deploybot/v1 that is some 20 ms of CPU (a
    bench worker process's fixed cost fell from ~31 to ~11 ms with it), otherwise paid by
    the first thread a process runs, in its latency."""
    message = UserMessage(channel="warm", sender="warm", text="")
    for prompt in prompts.weights(agent):
        render(prompts.version(agent, prompt), [message], root)


def _counted(used: int) -> Callable[[], int]:
    return lambda: used


def _counting(counter: tokens.Counter, thread: str, fixed: int) -> Callable[[], int]:
    return lambda: fixed + counter.count(thread)


@lru_cache(maxsize=64)
def _schema_count(counter: tokens.Counter, agent: Agent) -> int:
    """The response schema's tokens: the same for every run of an agent, so counted once
    (not serialized again on every render)."""
    return counter.count(json.dumps(response_schema(agent), separators=(",", ":")))


@lru_cache(maxsize=64)
def _fixed_count(counter: tokens.Counter, text: str) -> int:
    """The schema and system prompt are the same text run after run: counted once."""
    return counter.count(text)


# Names through which a block could reach the thread: the events and summary lines, the
# render context itself, other blocks, a macro's caller.
_THREAD_NAMES = frozenset({"events", "earlier", "self", "super", "caller", "varargs", "kwargs"})
# Nodes that render something else with the block's context, or read the context whole.
_WITH_CONTEXT = (
    nodes.Include,
    nodes.Extends,
    nodes.ContextReference,
    nodes.DerivedContextReference,
)


@cache
def _reads_thread(tmpl: jinja2.Template, name: str) -> bool:
    """Whether block ``name`` may depend on the events; False only when its source shows it
    cannot (then its text is a function of the agent alone, and is rendered once)."""
    env = tmpl.environment
    if env.loader is None or tmpl.name is None:
        return True
    try:
        tree = env.parse(env.loader.get_source(env, tmpl.name)[0])
    except (jinja2.TemplateError, OSError):
        return True
    if any(True for _ in tree.find_all(nodes.Extends)):
        return True  # the block may be the parent's: not read here
    for block in tree.find_all(nodes.Block):
        if block.name == name:
            return (
                any(n.name in _THREAD_NAMES for n in block.find_all(nodes.Name))
                or any(True for _ in block.find_all(_WITH_CONTEXT))
                or any(n.with_context for n in block.find_all(nodes.Import))
                or any(n.with_context for n in block.find_all(nodes.FromImport))
            )
    return True


@lru_cache(maxsize=64)
def _fixed_block(tmpl: jinja2.Template, agent: Agent, name: str) -> str:
    """A block that reads no events (``_reads_thread``): the same text for every thread."""
    return _block(tmpl, agent, name, (), None)


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
        **_globals(tmpl),
        "agent": agent,
        "tools": list(agent.tools.values()),
        "events": events,
        "earlier": earlier,
    }
    # shared: the variables are the context as given, the globals already in them (what
    # new_context would otherwise copy from the template's chain of mappings on every render).
    # No ``globals`` given: Template.new_context would pass the template's, and the context
    # keep a set of their names that every ``{% import %}`` inside the block compares with
    # the imported template's own (a set built from two key views, per render). Our
    # templates all have the environment's globals only (``template`` adds none), so that
    # comparison always finds nothing new and the import takes the cached module anyway.
    context = new_context(tmpl.environment, tmpl.name, tmpl.blocks, variables, shared=True)
    return "".join(tmpl.blocks[name](context)).strip()


@cache
def _globals(tmpl: jinja2.Template) -> dict[str, Any]:
    # The environment is ours and its globals are never changed after it is made.
    return dict(tmpl.globals)
