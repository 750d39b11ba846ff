"""Which prompt version a thread runs on: A/B weights per agent, sticky for the thread's life.

``prompt = { "deploybot/v1" = 90, "deploybot/v2" = 10 }`` in switchboard.toml. A thread keeps
the version its steps were decided with (every ``AgentStep`` records it), so changing the
weights never moves a thread that has started; a thread with no step yet draws one from its
id: a hash, not a random number, so every worker (and a replay) draws the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache

from agent.tools import Agent
from model.events import AgentStep, Event


def weights(agent: Agent) -> Mapping[str, int]:
    """The agent's versions and their weights ({prompt: 1} for a single version)."""
    return agent.prompt_weights or {agent.prompt: 1}


def draw(agent: Agent, thread_id: str) -> str:
    """The version a new thread gets, in proportion to the weights."""
    table = [(p, w) for p, w in sorted(weights(agent).items()) if w > 0]
    total = sum(w for _, w in table)
    digest = hashlib.sha256(f"{agent.name}\0{thread_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for prompt, weight in table:
        if point < weight:
            return prompt
        point -= weight
    raise AssertionError("unreachable: the point is below the total weight")


def assigned(agent: Agent, thread_id: str, events: Sequence[Event]) -> str:
    """The thread's version: the one its latest step used if still configured, else drawn."""
    configured = weights(agent)
    for e in reversed(events):
        if isinstance(e, AgentStep) and e.prompt in configured:
            return e.prompt
    return draw(agent, thread_id)


def for_thread(agent: Agent, thread_id: str, events: Sequence[Event]) -> Agent:
    """The agent as this thread runs it: ``prompt`` set to the thread's version."""
    if not agent.prompt_weights:  # one version: every thread's (no look at its steps, no draw)
        return agent
    return version(agent, assigned(agent, thread_id, events))


def version(agent: Agent, prompt: str) -> Agent:
    """The agent with ``prompt`` as the version it runs (the agent itself if it is its own)."""
    return agent if prompt == agent.prompt else _variant(agent, prompt)


@lru_cache(maxsize=256)
def _variant(agent: Agent, prompt: str) -> Agent:
    # One object per agent and version, not a copy per run: what is cached per agent (the
    # response schema's count, the system prompt's text) then serves every run of it.
    return replace(agent, prompt=prompt)
