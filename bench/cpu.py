"""CPU of the worker side of approval round trips, one process, a fixed amount of work.

    .venv/bin/python -m bench.cpu [--threads N] [--batch B]
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \
        .venv/bin/python -m bench.cpu --callgrind ...

The driver appends ``batch`` messages at a time, a Worker (with its process's outbox
dispatcher, as main.py wires them) runs them to the pause and delivers the requests, the
driver approves them, the worker runs them to done and delivers the final messages. Batches
let the commands of concurrent runs be coalesced, as they are under load. The figure printed
is the CPU (process_time) of the worker's and dispatcher's steps per thread, the driver's
own steps left out. Under callgrind, ``--callgrind`` turns its instrumentation on for those
steps only (``callgrind_control -i``; start-up then runs uninstrumented, and fast): the
instructions collected over the threads are the figure that does not move with the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time

from agent import collector
from bench.workload import AGENT, MESSAGE, in_process_worker
from model.events import Approved, UserMessage
from model.ids import new_id
from model.records import Origin
from store import connection
from store.embedded import start_ephemeral
from store.threads import NewThread

ORIGIN = Origin(channel="rest", address="bench")


def _collect(on: bool) -> None:
    """Callgrind's collection on or off in this process (run under valgrind)."""
    flag = "on" if on else "off"
    subprocess.run(
        ["callgrind_control", "-i", flag, str(os.getpid())], check=True, stdout=subprocess.DEVNULL
    )


async def _run(url: str, threads: int, batch: int, callgrind: bool = False) -> float:
    client = connection.connect(url, retrying=False)
    # Under valgrind a connect can take longer than the service's 5 s.
    client.connection_pool.connection_kwargs["socket_connect_timeout"] = 120
    store, worker, dispatcher = await in_process_worker(client, "cpu")
    worker.deliver_with(dispatcher)
    dispatcher.serve_direct()
    collector.settle()  # as main.py does once its start-up is done
    spent = 0.0

    async def work(counted: bool) -> None:
        nonlocal spent
        if counted and callgrind:
            _collect(True)
        started = time.process_time()
        while entries := await store.runs.read(worker.name, batch, 1):
            await asyncio.gather(*(worker.handle(e) for e in entries))
        await dispatcher.settled()
        if counted:
            spent += time.process_time() - started
        if counted and callgrind:
            _collect(False)

    done = -1  # the first thread warms up (the token encoding loads, caches fill): not counted
    while done < threads:
        n = 1 if done < 0 else min(batch, threads - done)
        ids = [new_id("th") for _ in range(n)]
        await asyncio.gather(
            *(
                store.append_inbound(
                    tid,
                    UserMessage(channel="rest", sender="bench", text=MESSAGE),
                    create=NewThread(agent=AGENT, origin=ORIGIN),
                )
                for tid in ids
            )
        )
        await work(done >= 0)
        pending = await store.pending_requests(n)
        await asyncio.gather(
            *(
                store.answer(
                    p.request.request_id,
                    Approved(request_id=p.request.request_id, channel="rest", responder="bench"),
                )
                for p in pending
            )
        )
        await work(done >= 0)
        done = done + n if done >= 0 else 0
    await client.aclose()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--batch", type=int, default=20, help="threads in progress at a time")
    parser.add_argument(
        "--callgrind", action="store_true", help="collect only the worker's steps (callgrind)"
    )
    args = parser.parse_args()
    server = start_ephemeral()
    try:
        spent = asyncio.run(_run(server.url, args.threads, args.batch, args.callgrind))
    finally:
        server.stop()
    per = spent * 1000 / args.threads if args.threads else 0.0
    print(f"worker CPU {per:.3f} ms/thread ({args.threads} threads, batches of {args.batch})")


if __name__ == "__main__":
    main()
