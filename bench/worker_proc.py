"""One Switchboard worker process for the benchmark: Worker + OutboxDispatcher, as main.py
runs them, with the scripted LLM and a REST sender that also reports each delivery.

    python -m bench.worker_proc REDIS_URL UDP_PORT CONCURRENCY [--profile FILE]

The report is one UDP datagram to the driver on loopback per delivered item
("kind thread_id request_id monotonic_time"): it costs Redis nothing, so the command counts
stay the service's own. CLOCK_MONOTONIC is shared by all processes of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import time

from agent import collector, tokens
from agent.outbox import OutboxDispatcher
from agent.runner import RunSettings
from agent.worker import Worker, WorkerSettings
from bench.workload import RoundTrips, ScriptedLLM, registry
from channels.rest.sender import RestSender
from model.records import Delivery, OutboxItem
from store import connection
from store.outbox import OutboxStore
from store.threads import ThreadStore


class ReportingSender(RestSender):
    """The REST sender, plus a datagram to the benchmark driver once an item is delivered."""

    def __init__(self, port: int) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._to = ("127.0.0.1", port)

    async def send(self, item: OutboxItem) -> Delivery:
        delivery = await super().send(item)
        line = f"{item.kind} {item.thread_id} {item.request_id or '-'} {time.monotonic()}"
        self._sock.sendto(line.encode(), self._to)
        return delivery


async def serve(url: str, port: int, concurrency: int) -> None:
    # The client main.py gives its workers (the cluster client where the URL names one).
    client = connection.connect(url, retrying=False)
    store = ThreadStore(client)
    await store.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        store,
        registry(),
        ScriptedLLM(),
        settings=WorkerSettings(concurrency=concurrency, run=RunSettings(), block_ms=100),
    )
    sender = ReportingSender(port)
    dispatcher = OutboxDispatcher(
        store.outbox_stream, OutboxStore(client), {"rest": sender}, name=worker.name
    )
    worker.deliver_with(dispatcher)
    tokens.counter()  # loaded at start-up, as main.py does (it logs which counter it uses)
    worker.warm()  # as main.py does
    collector.settle()  # as main.py does once its start-up is done
    sender._sock.sendto(f"ready - {time.process_time()} 0".encode(), sender._to)
    await asyncio.gather(worker.run(stop), dispatcher.run(stop))
    await client.aclose()
    cpu = time.process_time()
    sender._sock.sendto(f"trips - {cpu} {RoundTrips.count}".encode(), sender._to)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("port", type=int)
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--profile", help="write a pyinstrument profile (text) to this file")
    args = parser.parse_args()
    RoundTrips.install()
    if not args.profile:
        asyncio.run(serve(args.url, args.port, args.concurrency))
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        asyncio.run(serve(args.url, args.port, args.concurrency))
    finally:
        profiler.stop()
        with open(args.profile, "w") as f:
            f.write(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
