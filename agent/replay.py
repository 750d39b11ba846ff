"""Replay: what would another prompt version have decided at every recorded decision point?

For each ``AgentStep`` of the chosen threads, the context is rendered as it was then (the
events before that step) with the other version, the configured model is asked, and its
intent and arguments are compared with the recorded ones. Nothing runs and nothing is
written: replay only reads threads (``store.reads``) and calls the model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.context import template
from agent.errors import LLMFailed
from agent.llm import LLM
from agent.reducer import next_step
from agent.tools import Agent
from model.events import AgentStep, Event
from store import keys
from store.partitions import Shared
from store.reads import ThreadReads, text

_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Difference(_Out):
    """A decision point where the replayed version decided otherwise (or failed to)."""

    thread_id: str
    index: int
    """Position of the recorded step in the thread's log."""
    recorded_prompt: str
    recorded: dict[str, Any]
    replayed: dict[str, Any] | None
    error: str | None = None


class IntentAgreement(_Out):
    decisions: int = 0
    agreed: int = 0


class ReplayReport(_Out):
    agent: str
    prompt: str
    threads: int
    decisions: int
    agreed: int
    per_intent: dict[str, IntentAgreement] = Field(default_factory=dict)
    """Keyed by the recorded intent."""
    differences: list[Difference] = Field(default_factory=list)

    def table(self) -> str:
        """The report for a terminal: agreement per intent, then each difference."""
        share = f"{self.agreed}/{self.decisions}" if self.decisions else "0/0"
        lines = [
            f"replay of {self.agent} with {self.prompt}: {self.threads} threads, "
            f"{self.decisions} decisions, {share} agree",
            "",
            f"{'intent':<28}{'decisions':>10}{'agree':>8}",
        ]
        for intent, row in sorted(self.per_intent.items()):
            lines.append(f"{intent:<28}{row.decisions:>10}{row.agreed:>8}")
        for d in self.differences:
            lines.append("")
            lines.append(f"{d.thread_id} #{d.index} (recorded with {d.recorded_prompt})")
            lines.append(f"  recorded: {_call(d.recorded)}")
            lines.append(f"  replayed: {_call(d.replayed) if d.replayed else d.error}")
        return "\n".join(lines)


def _call(decision: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in decision["arguments"].items())
    return f"{decision['intent']}({args})"


def since_ms(spec: str, now: float | None = None) -> int:
    """``7d``, ``12h``, ``30m``, ``45s`` as the epoch ms that long ago. ValueError otherwise."""
    match = _SINCE.match(spec.strip())
    if not match:
        raise ValueError(f"--since wants a number and s, m, h or d (like 7d), not {spec!r}")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    return int(((now if now is not None else time.time()) - seconds) * 1000)


async def select(
    reads: ThreadReads,
    agent: str,
    *,
    thread_ids: Sequence[str] = (),
    since: str | None = None,
    limit: int | None = None,
) -> list[str]:
    """The agent's threads to replay: these ids, or the newest (since a time, up to a limit)."""
    if thread_ids:
        return list(thread_ids)
    scored: list[Any] = []  # (member, score) pairs
    for index in Shared(reads.redis).every(keys.threads):  # every partition's index
        if since is not None:
            scored += await reads.redis.zrevrangebyscore(
                index, "+inf", since_ms(since), withscores=True
            )
        else:
            scored += await reads.redis.zrevrange(index, 0, -1, withscores=True)
    # Each partition is newest-first on its own; merged, the newest overall must come
    # first, or --limit would keep the newest of the first partition only.
    scored.sort(key=lambda pair: pair[1], reverse=True)
    chosen = []
    for tid in (text(pair[0]) for pair in scored):
        owner = await reads.redis.hget(keys.meta(tid), "agent")
        if owner is not None and text(owner) == agent:
            chosen.append(tid)
            if limit is not None and len(chosen) >= limit:
                break
    return chosen


async def replay(
    reads: ThreadReads, agent: Agent, prompt: str, llm: LLM, thread_ids: Sequence[str]
) -> ReplayReport:
    """Ask the model again at every recorded decision point of these threads, with ``prompt``."""
    template(prompt)  # an unknown version is refused before any model call
    trial = replace(agent, prompt=prompt)
    per_intent: dict[str, IntentAgreement] = {}
    differences: list[Difference] = []
    decisions = agreed = 0
    for tid in thread_ids:
        events = (await reads.thread(tid)).events
        for i, step in enumerate(events):
            if not isinstance(step, AgentStep):
                continue
            decisions += 1
            difference = await _one(trial, llm, tid, i, step, events[:i])
            row = per_intent.get(step.intent, IntentAgreement())
            same = difference is None
            agreed += same
            per_intent[step.intent] = IntentAgreement(
                decisions=row.decisions + 1, agreed=row.agreed + same
            )
            if difference is not None:
                differences.append(difference)
    return ReplayReport(
        agent=agent.name,
        prompt=prompt,
        threads=len(thread_ids),
        decisions=decisions,
        agreed=agreed,
        per_intent=per_intent,
        differences=differences,
    )


async def _one(
    agent: Agent, llm: LLM, tid: str, index: int, step: AgentStep, before: Sequence[Event]
) -> Difference | None:
    recorded = {"intent": step.intent, "arguments": dict(step.arguments)}
    found = {"thread_id": tid, "index": index, "recorded_prompt": step.prompt}
    try:
        decision = await next_step(agent, before, llm)
    except LLMFailed as exc:
        return Difference(
            **found, recorded=recorded, replayed=None, error=f"{exc.kind}: {exc.error}"
        )
    replayed = {"intent": decision.intent, "arguments": dict(decision.arguments)}
    return (
        None if replayed == recorded else Difference(**found, recorded=recorded, replayed=replayed)
    )
