"""What the model sees of a thread, in numbers: for the thread API and the console.

The thread's prompt version (A/B, ``agent.prompts``), the tokens its next context counts
against the agent's budget, how they were counted, and what compaction summarized.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from agent import prompts
from agent.context import render
from agent.tools import Agent
from model.events import Event, Summarized


class ContextInfo(BaseModel):
    """The context the thread's next model call would be shown."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    """The thread's prompt version: sticky for its life, drawn by the A/B weights."""
    tokens: int
    budget: int
    counting: str
    """"tiktoken o200k_base", or the conservative estimate when its file is not on disk."""
    compacted_turns: int = 0
    """Oldest settled turns shown as one summary line each (0: the whole thread verbatim)."""
    compacted_events: int = 0
    """Events (as the model would see them) those turns held."""
    not_shown: int = 0
    """Of the compacted turns, the oldest left out entirely (only their number is shown)."""
    model_summaries: int = 0
    """Of the compacted turns, those whose line the model wrote (``summarize = "model"``:
    the ``summarized`` events of the thread hold the text)."""


def describe(agent: Agent, thread_id: str, events: Sequence[Event]) -> ContextInfo:
    ctx = render(prompts.for_thread(agent, thread_id, events), events)
    done = ctx.compacted
    return ContextInfo(
        prompt=ctx.prompt,
        tokens=ctx.tokens,
        budget=agent.context_tokens,
        counting=ctx.counting,
        compacted_turns=done.turns if done else 0,
        compacted_events=done.events if done else 0,
        not_shown=done.omitted if done else 0,
        model_summaries=sum(
            1
            for e in events
            if isinstance(e, Summarized) and e.by == "model" and done and e.turn < done.turns
        ),
    )
