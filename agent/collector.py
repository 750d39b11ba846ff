"""How a long-lived process of ours sets Python's garbage collector once start-up is done.

Here rather than in main.py so that the benchmark's worker processes (bench/) run as the
service's do.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations (less deallocations) between young-generation collections; CPython's
default is 700. Every Redis command and step makes and drops a few dozen short-lived objects
(futures, handles, dicts), so at 700 a busy worker collected every few commands; at 20,000
the collector's share of a worker's instructions falls from about 3.5 % to under 1 %
(``bench.cpu --callgrind``: 723 -> 696 M for 200 threads) for some megabytes at most."""


def settle() -> None:
    """What start-up made (modules, models and their schemas, the registry) lives as long as
    the process: frozen, it is not walked again by every full collection (in a busy worker
    those were about 90 ms each, some 0.2 ms of CPU per thread). Then the young generation
    is collected less often (``YOUNG_THRESHOLD``); the older ones keep their defaults."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
