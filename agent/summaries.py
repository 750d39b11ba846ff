"""``summarize = "model"``: the summary lines of compacted turns, written by the model.

When the thread's snapshot is about to move past some turns (``agent.snapshot.cut``), the
run asks the model for one line per turn that has none yet (the newest ``MAX_PER_RUN`` of
them; older ones keep the code's line), through the agent's LLM protocol, and appends each
as a ``Summarized`` event before the releasing commit. The line is then part of the log:
the snapshot's pieces, later runs, the thread API and replays all show the same text, and
no summary is asked for twice. A failed call is recorded too (``by="code"``, with the
error), and the code's line (``agent.compaction.summary_line``) stands for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent import compaction, snapshot
from agent.context import template, thread_block, visible_events
from agent.errors import LLMFailed
from agent.fitting import summaries
from agent.llm import LLM
from agent.tools import Agent
from model.events import Event, Summarized

MAX_PER_RUN = snapshot.STEP_TURNS
"""Model calls one run makes for summaries at most: the turns one snapshot step covers."""
MAX_CHARS = 300
"""A summary line longer than this is cut: it must stay one short line of the context."""

INSTRUCTIONS = (
    "You summarize one finished turn of a conversation between people and an agent, for "
    "the agent's own later reference. Write one line of at most 40 words: who asked what, "
    "what the agent did (tools and their arguments), and how it ended. Plain text, no "
    "markup. Answer in the JSON schema you are given."
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"summary": {"type": "string", "description": "The turn in one line."}},
    "required": ["summary"],
    "additionalProperties": False,
}


def due(
    agent: Agent, previous: snapshot.Snapshot | None, events: Sequence[Event]
) -> list[tuple[int, list[Event]]]:
    """The turns the next snapshot covers with no stored line yet: (turn, its visible events).

    ``events`` as for ``snapshot.advance``: ``previous``'s carried events, then the tail."""
    if agent.summarize != "model":
        return []
    tail = events[len(previous.carried) if previous else 0 :]
    before = previous.turns if previous else 0
    visible = visible_events(tail)
    at = snapshot.cut(tail, visible, before)
    if at is None:
        return []
    have = summaries(tail)
    turns = compaction.turns(visible)[: at.turns]
    todo = [
        (before + j, visible[t.start : t.end])
        for j, t in enumerate(turns)
        if before + j not in have
    ]
    return todo[-MAX_PER_RUN:]


async def summarize(agent: Agent, llm: LLM, turn: int, events: Sequence[Event]) -> Summarized:
    """One turn's line from the model; the code's line, with the reason, if that fails."""
    text = thread_block(template(agent.prompt), agent)(events, None)
    messages = [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": text},
    ]
    try:
        completion = await llm.complete(messages, SCHEMA)
        line = _line(completion.text)
    except LLMFailed as exc:
        error = f"{exc.kind}: {exc.error}"
    except ValueError as exc:
        error = f"unusable summary: {exc}"
    else:
        return Summarized(turn=turn, text=line)
    return Summarized(
        turn=turn, text=compaction.summary_line(events), by="code", error=error[:MAX_CHARS]
    )


def _line(raw: str) -> str:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError("not JSON") from None
    summary = value.get("summary") if isinstance(value, dict) else None
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError("no summary text")
    flat = " ".join(summary.split())  # one line, whatever the model sent
    return flat if len(flat) <= MAX_CHARS else flat[: MAX_CHARS - 1] + "…"
