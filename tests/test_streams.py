"""store/streams.py: the work streams' reads, as a consumer stops."""

from __future__ import annotations

import asyncio
import contextlib

from store import streams
from store.threads import ThreadStore


async def test_close_ends_the_reads_in_flight(store: ThreadStore) -> None:
    await store.runs.ensure_group()
    assert await store.runs.read("c", 10, 10) == []  # nothing there: the reads stay in flight
    reads = list(store.runs._waiting.values())
    assert reads
    assert not any(t.done() for t in reads)
    await store.runs.close()
    assert all(t.done() for t in reads)
    assert not store.runs._waiting


async def test_close_does_not_wait_out_a_read_that_ignores_its_cancel(store: ThreadStore) -> None:
    """As seen at a shutdown under load: a cancelled read still blocked on its socket. close()
    gives it CLOSE_WAIT_S and returns; the read ends when the client's connections close."""
    released = asyncio.Event()

    async def stubborn() -> list[streams.Entry]:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await released.wait()  # the cancel was swallowed: it waits on, as that read did
        return []

    read = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # into its sleep, where the cancel will find it
    store.runs._waiting["stuck"] = read
    await store.runs.close()
    assert not read.done()
    assert not store.runs._waiting
    released.set()
    await read
