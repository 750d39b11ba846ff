"""Every Redis command of one approval round trip, step by step: where the commands go.

    .venv/bin/python -m bench.trace            # counts per step and per command
    .venv/bin/python -m bench.trace --all      # and every command as Redis ran it
    .venv/bin/python -m bench.trace --stream   # outbox items through the outbox stream

One thread, one process, an embedded Redis watched with MONITOR (which also shows what Lua
scripts run inside Redis): the driver's message, the worker's run to the pause, the outbox
delivering the approval request, the approval, the run to done, the final message's
delivery. The worker hands its new outbox items to its process's dispatcher, as main.py
wires them (``--stream``: as where no dispatcher runs beside the worker); the trace holds
them until the outbox step, so each delivery's commands are counted in its own step.
Deterministic, unlike throughput on a shared machine: the figure to check a change
that is meant to save commands or round trips against.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from agent.outbox import OutboxDispatcher
from bench.workload import AGENT, MESSAGE, RoundTrips, in_process_worker
from model.events import Approved, UserMessage
from model.ids import new_id
from model.records import Origin, OutboxItem
from store.embedded import start_ephemeral
from store.threads import NewThread


class _Monitor:
    """Collects MONITOR lines on a thread of its own, tagged with the step running."""

    def __init__(self, url: str) -> None:
        self.step = "setup"
        self.lines: list[tuple[str, str]] = []
        self._client = redis.Redis.from_url(url)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        try:
            with self._client.monitor() as m:
                self._ready.set()
                for line in m.listen():
                    self.lines.append((self.step, f"{line['client_type']:4} {line['command']}"))
        except redis.ConnectionError:
            return  # the server stopped: the trace is over

    def mark(self, step: str) -> None:
        time.sleep(0.05)  # let the lines of the step before arrive
        self.step = step


class _Held(OutboxDispatcher):
    """The dispatcher, holding what the worker hands it until the trace's outbox step."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[OutboxItem] = []

    def take(self, items: Sequence[OutboxItem]) -> None:
        self.held += items

    async def release(self) -> None:
        """Hand over what the worker's commits handed it, and wait for it to be settled."""
        held, self.held = self.held, []
        super().take(held)
        await self.settled()


async def _deliver(dispatcher: _Held) -> None:
    if dispatcher.held:
        await dispatcher.release()
        return
    entries = await dispatcher.stream.read(dispatcher.name, 8, 100)
    for entry in entries:
        await dispatcher.deliver(entry)


async def _round_trip(url: str, mon: _Monitor, stream: bool) -> dict[str, int]:
    client = aioredis.from_url(url)
    store, worker, dispatcher = await in_process_worker(client, "trace", _Held)
    if not stream:
        worker.deliver_with(dispatcher)
        dispatcher.serve_direct()
    trips: dict[str, int] = {}
    tid = new_id("th")

    async def step(name: str, coro: Any) -> Any:
        mon.mark(name)
        before = RoundTrips.count
        result = await coro
        trips[name] = RoundTrips.count - before
        return result

    await step(
        "1 driver: message",
        store.append_inbound(
            tid,
            UserMessage(channel="rest", sender="bench", text=MESSAGE),
            create=NewThread(agent=AGENT, origin=Origin(channel="rest", address="bench")),
        ),
    )
    entries = await step("2 worker: read", store.runs.read(worker.name, 8, 100))
    await step("3 worker: run to pause", worker.handle(entries[0]))
    await step("4 outbox: request", _deliver(dispatcher))
    mon.mark("setup")  # finding the request id is the benchmark driver's, not counted
    pending = await store.pending_requests(1)
    rid = pending[0].request.request_id
    answer = store.answer(rid, Approved(request_id=rid, channel="rest", responder="bench"))
    await step("5 driver: approve", answer)
    entries = await step("6 worker: read", store.runs.read(worker.name, 8, 100))
    await step("7 worker: run to done", worker.handle(entries[0]))
    await step("8 outbox: final", _deliver(dispatcher))
    mon.mark("end")
    await client.aclose()
    return trips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="print every command")
    parser.add_argument(
        "--stream", action="store_true", help="outbox items through the stream, not handed over"
    )
    args = parser.parse_args()
    RoundTrips.install()
    server = start_ephemeral()
    try:
        mon = _Monitor(server.url)
        trips = asyncio.run(_round_trip(server.url, mon, args.stream))
        time.sleep(0.1)
        lines = [(s, c) for s, c in mon.lines if s not in ("setup", "end")]
    finally:
        server.stop()
    by_step: dict[str, list[str]] = collections.defaultdict(list)
    for s, c in lines:
        by_step[s].append(c)
    total = collections.Counter(c.split()[1].strip('"').lower() for _, c in lines)
    print(f"{'step':28} {'round trips':>11} {'commands':>9}")
    for s, cmds in by_step.items():
        print(f"{s:28} {trips.get(s, 0):>11} {len(cmds):>9}")
        if args.all:
            for c in cmds:
                print("     ", c[:160])
    print(f"{'total':28} {sum(trips.values()):>11} {len(lines):>9}")
    print("by command:", ", ".join(f"{k} {v}" for k, v in total.most_common()))


if __name__ == "__main__":
    main()
