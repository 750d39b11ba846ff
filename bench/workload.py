"""The benchmark's workload, shared by both systems: one agent, one tool, scripted decisions.

"Approval round trip", per thread: "deploy v1.2.3 to production" -> the decision function
answers deploy(tag, env) -> the tool needs approval, the thread pauses -> approved -> the tool
runs (a no-op) -> the decision function answers done_for_now -> the final message goes out.

The decision function is zero-latency and in-process, but it reads what a model would read
(the rendered context for Switchboard, the chat messages for LangGraph), so the cost of
building that input is counted as the framework's.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.config import Registry
from agent.llm import Completion
from agent.outbox import OutboxDispatcher
from agent.tools import Address, Agent, Tool
from agent.worker import Worker, WorkerSettings
from channels.rest.sender import RestSender
from store.outbox import OutboxStore
from store.threads import ThreadStore

AGENT = "deploybot"
PROMPT = "deploybot/v1"
MESSAGE = "deploy v1.2.3 to production"

_ASK = re.compile(r"deploy (v\d+\.\d+\.\d+) to (staging|production)")


class DeployArgs(BaseModel):
    """Deploy a release tag to an environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tag: str = Field(pattern=r"^v\d+\.\d+\.\d+$", description="Release tag, like v1.2.3.")
    env: str = Field(description="Target environment.")


async def deploy_noop(args: Any) -> str:
    """The deploy tool of the benchmark: does nothing, says what it would have done."""
    return f"deployed {args.tag} to {args.env}"


def registry() -> Registry:
    """DeployBot with a single no-op deploy tool that needs an approval from any REST user."""
    deploy = Tool(
        name="deploy",
        description="Deploy a release tag to an environment.",
        args=DeployArgs,
        run=deploy_noop,
        needs_approval=True,
        side_effects=True,
        approvers=(Address("rest", "*"),),
    )
    agent = Agent(name=AGENT, tools={"deploy": deploy}, prompt=PROMPT, max_steps=10)
    return Registry({AGENT: agent}, AGENT)


def decide(text: str, tool_done: bool) -> dict[str, Any]:
    """The scripted decision: deploy what was asked, then say it is done."""
    if tool_done:
        return {"intent": "done_for_now", "message": "Deployed v1.2.3 to production."}
    match = _ASK.search(text)
    if match is None:
        return {"intent": "request_more_information", "message": "What should I deploy?"}
    return {"intent": "deploy", "tag": match.group(1), "env": match.group(2)}


class ScriptedLLM:
    """Switchboard's LLM protocol, answered at once from the rendered context."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        self.calls += 1
        thread = messages[-1]["content"]
        step = decide(thread, '<result tool="deploy">' in thread)
        return Completion(json.dumps({"step": step}))


# ---- figures ----------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary(latencies_s: Sequence[float], wall_s: float, n: int) -> dict[str, float]:
    """Throughput and latency figures of one phase (latencies in ms)."""
    ms = [x * 1000 for x in latencies_s]
    return {
        "threads": n,
        "wall_s": round(wall_s, 3),
        "throughput": round(n / wall_s, 1) if wall_s > 0 else 0.0,
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else 0.0,
    }


def command_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, int]:
    """Calls per Redis command between two INFO commandstats replies."""
    out: dict[str, int] = {}
    for name, stats in after.items():
        calls = int(stats["calls"]) - int(before.get(name, {}).get("calls", 0))
        if calls:
            out[name.removeprefix("cmdstat_")] = calls
    return out


class RoundTrips:
    """Counts this process's writes to Redis: one per command or pipeline (a round trip).

    INFO commandstats also counts the commands a Lua script runs inside Redis; this counts
    what crosses the network. Installed by patching redis-py's connection, in the benchmark
    processes only.
    """

    count = 0

    @classmethod
    def install(cls) -> None:
        from redis.asyncio.connection import AbstractConnection

        original = AbstractConnection._send_packed_command

        async def counted(self: Any, command: Any) -> None:
            cls.count += 1
            await original(self, command)

        AbstractConnection._send_packed_command = counted  # type: ignore[method-assign]


async def in_process_worker(
    client: Any, name: str, dispatcher: type[OutboxDispatcher] = OutboxDispatcher
) -> tuple[ThreadStore, Worker, OutboxDispatcher]:
    """A worker on the bench's agent and scripted model, with its process's outbox
    dispatcher delivering through the REST sender (set up, not yet handed its commits)."""
    store = ThreadStore(client)
    await store.setup()
    worker = Worker(store, registry(), ScriptedLLM(), name=name, settings=WorkerSettings())
    outbox = OutboxStore(client)
    await outbox.setup()
    sender = dispatcher(store.outbox_stream, outbox, {"rest": RestSender()}, name=name)
    await sender.stream.ensure_group()
    return store, worker, sender
