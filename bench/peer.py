"""The peer: the same approval round trip in LangGraph, with interrupt() and Command(resume=...).

State is the OpenAI chat-messages list (plain dicts, appended by ``operator.add``: the
lightest state LangGraph allows, which favours the peer). The decision function is the one
Switchboard's scripted LLM uses, reading the messages. The approval node interrupts; the
caller resumes it with the human's decision; the deploy tool is the same no-op; the final
message is "sent" by a node that does nothing else. Checkpointers: Postgres (a fresh
database on loopback, dropped afterwards) and the in-memory saver.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
import os
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Annotated, Any, TypedDict

from bench.workload import MESSAGE, decide, deploy_noop, summary


class State(TypedDict):
    messages: Annotated[list[dict[str, Any]], operator.add]


def build_graph(checkpointer: Any) -> Any:
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    calls = {"n": 0}

    async def agent(state: State) -> dict[str, Any]:
        messages = state["messages"]
        tool_done = any(m["role"] == "tool" for m in messages)
        text = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        step = decide(text, tool_done)
        if step["intent"] == "deploy":
            calls["n"] += 1
            args = {"tag": step["tag"], "env": step["env"]}
            call = {
                "id": f"call_{calls['n']}",
                "type": "function",
                "function": {"name": "deploy", "arguments": json.dumps(args)},
            }
            return {"messages": [{"role": "assistant", "content": None, "tool_calls": [call]}]}
        return {"messages": [{"role": "assistant", "content": step["message"]}]}

    def route(state: State) -> str:
        return "approve" if state["messages"][-1].get("tool_calls") else "send"

    async def approve(state: State) -> Command[Any]:
        call = state["messages"][-1]["tool_calls"][0]
        verdict = interrupt({"tool": "deploy", "arguments": call["function"]["arguments"]})
        if verdict.get("decision") == "approve":
            return Command(goto="tool")
        rejected = {"role": "tool", "tool_call_id": call["id"], "content": "rejected"}
        return Command(goto="agent", update={"messages": [rejected]})

    async def tool(state: State) -> dict[str, Any]:
        call = state["messages"][-1]["tool_calls"][0]
        args = SimpleNamespace(**json.loads(call["function"]["arguments"]))
        output = await deploy_noop(args)
        return {"messages": [{"role": "tool", "tool_call_id": call["id"], "content": output}]}

    async def send(state: State) -> dict[str, Any]:
        return {}  # the final message goes out: a no-op, like the REST sender

    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("approve", approve)
    graph.add_node("tool", tool)
    graph.add_node("send", send)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["approve", "send"])
    graph.add_edge("tool", "agent")
    graph.add_edge("send", END)
    return graph.compile(checkpointer=checkpointer)


async def _phases(graph: Any, n: int, inflight: int) -> dict[str, Any]:
    from langgraph.types import Command

    sem = asyncio.Semaphore(inflight)
    lat1: list[float] = []
    lat2: list[float] = []

    async def start(i: int) -> None:
        async with sem:
            t = time.monotonic()
            out = await graph.ainvoke(
                {"messages": [{"role": "user", "content": MESSAGE}]},
                {"configurable": {"thread_id": f"t{i}"}},
            )
            assert "__interrupt__" in out, out
            lat1.append(time.monotonic() - t)

    async def resume(i: int) -> None:
        async with sem:
            t = time.monotonic()
            out = await graph.ainvoke(
                Command(resume={"decision": "approve"}),
                {"configurable": {"thread_id": f"t{i}"}},
            )
            assert out["messages"][-1]["content"].startswith("Deployed"), out
            lat2.append(time.monotonic() - t)

    cpu0 = time.process_time()
    t0 = time.monotonic()
    await asyncio.gather(*(start(i) for i in range(n)))
    t1 = time.monotonic()
    await asyncio.gather(*(resume(i) for i in range(n)))
    t2 = time.monotonic()
    cpu = time.process_time() - cpu0
    return {
        "worker_cpu_ms_per_thread": round(cpu * 1000 / n, 3),
        "phase1": summary(lat1, t1 - t0, n),
        "phase2": summary(lat2, t2 - t1, n),
        "round_trip": summary([], t2 - t0, n),
    }


async def run_memory(n: int, inflight: int = 64) -> dict[str, Any]:
    from langgraph.checkpoint.memory import InMemorySaver

    saver = InMemorySaver()
    result = await _phases(build_graph(saver), n, inflight)
    return {"system": "langgraph", "store": "in-memory saver", **result}


PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def _fresh_database() -> AsyncIterator[str]:
    """A new database for one run, dropped afterwards (nothing else on the server is touched)."""
    import psycopg

    name = f"sb_bench_{os.getpid()}"
    admin = await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        await admin.execute(f"CREATE DATABASE {name}")
        base = PG_ADMIN.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def run_postgres(n: int, inflight: int = 64, pool_size: int = 10) -> dict[str, Any]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    async with _fresh_database() as dsn:
        pool = AsyncConnectionPool(
            dsn,
            min_size=pool_size,
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        await pool.open(wait=True)
        try:
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            result = await _phases(build_graph(saver), n, inflight)
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT sum(pg_total_relation_size(c.oid))::bigint AS total, "
                    "(SELECT count(*) FROM checkpoints) AS checkpoints "
                    "FROM pg_class c WHERE c.relname IN "
                    "('checkpoints', 'checkpoint_blobs', 'checkpoint_writes')"
                )
                row: Any = await cur.fetchone()
                cur = await conn.execute(
                    "SELECT (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM checkpoints t)"
                    " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM checkpoint_blobs t)"
                    " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM checkpoint_writes t)"
                    " AS rows"
                )
                rows: Any = await cur.fetchone()
        finally:
            await pool.close()
    return {
        "system": "langgraph",
        "store": f"postgres checkpointer (pool {pool_size})",
        **result,
        "bytes_per_thread": round(int(row["total"]) / n),
        "row_bytes_per_thread": round(int(rows["rows"]) / n),
        "checkpoints_per_thread": round(int(row["checkpoints"]) / n, 1),
    }
