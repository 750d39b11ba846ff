"""Every Prometheus metric the service exports, defined once, in the default registry.

Each process counts what it does itself: the API the inbound messages, threads started and
decisions; a worker its runs, model calls, tool runs and deliveries. Prometheus adds the
processes up (``sum by``), so several workers give correct totals with no shared state
between them. Gauges of the whole system (requests waiting for a human) are read from Redis
at scrape time instead (``PENDING``, set by the /metrics handler just before it answers),
so they are right whichever process answers; take ``max``, not ``sum``, of those.

Several API processes (SWITCHBOARD_API_PROCESSES) serve one port, and a scrape reaches any
one of them, so there the counts go through prometheus_client's multiprocess mode: each
process writes its own to files in one directory, and /metrics adds them up
(``across_processes``); the gauges read from Redis are rendered once, by the process that
read them. prometheus_client cannot sum the process and GC collectors, so those are absent.

Label values are bounded: agents, tools, intents and channels come from the configuration,
kinds and outcomes from closed sets. No thread, request or call id is ever a label.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

# The ``*_created`` timestamp series double the scrape for nothing Prometheus uses.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds. Model calls and tool runs take from milliseconds to minutes.
_CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# A human decides within seconds (a test) or hours (an approval over a weekend).
_DECISION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)

THREADS_STARTED = Counter(
    "switchboard_threads_started", "Threads created by an inbound message.", ["agent", "channel"]
)
INBOUND = Counter(
    "switchboard_inbound",
    "Inbound human input stored (accepted) or recognised as a redelivery (duplicate).",
    ["channel", "outcome"],
)
INBOUND_REFUSED = Counter(
    "switchboard_inbound_refused",
    "Inbound requests refused (reason: the HTTP status, or the SMTP reply code).",
    ["channel", "reason"],
)
STEPS = Counter("switchboard_steps", "Next steps the model decided.", ["agent", "intent", "prompt"])
MODEL_CALL_SECONDS = Histogram(
    "switchboard_model_call_seconds", "Model call latency.", ["model"], buckets=_CALL_BUCKETS
)
MODEL_ERRORS = Counter("switchboard_model_errors", "Failed model calls.", ["model", "kind"])
MODEL_TOKENS = Counter(
    "switchboard_model_tokens",
    "Tokens the model read (input) and wrote (output).",
    ["model", "direction"],
)
TOOL_RUNS = Counter("switchboard_tool_runs", "Tool runs by outcome.", ["tool", "outcome"])
TOOL_RUN_SECONDS = Histogram(
    "switchboard_tool_run_seconds", "Tool run duration.", ["tool"], buckets=_CALL_BUCKETS
)
REQUESTS = Counter(
    "switchboard_requests", "Questions and approvals asked of humans.", ["agent", "kind"]
)
_PENDING = (
    "switchboard_requests_pending",
    "Requests waiting for a human now (read from Redis at scrape time).",
)
PENDING = Gauge(*_PENDING, ["agent", "kind"])
DECISION_SECONDS = Histogram(
    "switchboard_decision_seconds",
    "From a request to the human's answer or decision.",
    ["kind", "decision"],
    buckets=_DECISION_BUCKETS,
)
EXPIRED = Counter("switchboard_requests_expired", "Requests that expired unanswered.")
ESCALATIONS = Counter(
    "switchboard_escalations", "Runs that stopped to ask a human for help.", ["agent"]
)
REMINDERS = Counter("switchboard_reminders", "Reminders sent about waiting requests.", ["agent"])
WITHDRAWALS = Counter(
    "switchboard_withdrawals", "Requests withdrawn from the people asked.", ["agent"]
)
DELIVERIES = Counter(
    "switchboard_outbox_deliveries", "Messages delivered to a channel.", ["channel", "kind"]
)
DELIVERY_FAILURES = Counter(
    "switchboard_outbox_failures",
    "Messages given up on (status: failed, or unknown after an interrupted attempt).",
    ["channel", "status"],
)
DELIVERY_RETRIES = Counter(
    "switchboard_outbox_retries",
    "Delivery attempts that failed and will be retried.",
    ["channel"],
)
REROUTES = Counter(
    "switchboard_outbox_reroutes", "Messages offered another way after a failure.", ["channel"]
)
LEASE_TAKEOVERS = Counter(
    "switchboard_lease_takeovers", "Threads a worker took over from one that went silent."
)
RUN_SECONDS = Histogram(
    "switchboard_run_seconds",
    "Duration of one run (lease to release).",
    ["agent", "outcome"],
    buckets=_CALL_BUCKETS,
)
REDIS_ERRORS = Counter(
    "switchboard_redis_errors",
    "Redis commands that failed (connection, timeout, reply).",
    ["where"],
)


_M = TypeVar("_M", Counter, Histogram)
_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def child(metric: _M, *values: str) -> _M:
    """``metric.labels(*values)``, the series looked up once: prometheus_client checks and
    converts the values and takes a lock at every ``labels`` call (about a dozen a run).
    Label values are bounded (module doc), so is this cache."""
    key = (metric, values)
    try:
        found: _M = _children[key]
    except KeyError:
        found = _children[key] = metric.labels(*values)
    return found


def preset(agents: Iterable[str], channels: Iterable[str]) -> None:
    """Create the labelled series that may stay at zero, so a dashboard sees 0, not nothing."""
    for agent in agents:
        for counter in (ESCALATIONS, REMINDERS, WITHDRAWALS):
            counter.labels(agent)
    for channel in channels:
        for counter in (DELIVERY_RETRIES, REROUTES):
            counter.labels(channel)
        for status in ("failed", "unknown"):
            DELIVERY_FAILURES.labels(channel, status)
    for where in ("api", "worker", "outbox", "metrics"):
        REDIS_ERRORS.labels(where)


def set_pending(counts: Mapping[tuple[str, str], int]) -> None:
    """``PENDING`` from what Redis holds now, by (agent, kind); only these series remain."""
    global _pending_now
    if _shared_dir is not None:
        # A gauge in multiprocess mode keeps a value per process in its files, and cannot
        # drop a series: this reading is rendered as it is, once, by ``exposition``.
        _pending_now = dict(counts)
        return
    PENDING.clear()
    for (agent, kind), n in counts.items():
        PENDING.labels(agent, kind).set(n)


def exposition() -> tuple[bytes, str]:
    """The text format of the default registry (with the process and GC collectors), or,
    across processes, the sum of every process's files and this process's Redis reading."""
    if _shared_dir is None:
        return generate_latest(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()  # a new one per scrape, as prometheus_client's docs do
    MultiProcessCollector(registry, path=_shared_dir)  # type: ignore[no-untyped-call]
    registry.register(_PendingNow())
    return generate_latest(registry), CONTENT_TYPE_LATEST


# ---- several processes ------------------------------------------------------------------
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's multiprocess mode: it reads this when imported, in every process."""
_OWNER = "owner.pid"
"""In a directory the service made: the pid of the process that removes it at the end (the
first process; an exec keeps the pid). Not a ``*.db`` file, so the collector skips it."""
_shared_dir: str | None = None
_pending_now: dict[tuple[str, str], int] = {}


class _PendingNow:
    """``PENDING`` as this process last read it from Redis (``set_pending``)."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(*_PENDING, labels=["agent", "kind"])
        for (agent, kind), n in _pending_now.items():
            family.add_metric([agent, kind], n)
        yield family


def new_shared_dir() -> str:
    """An empty directory for the processes' files, marked as this process's to remove."""
    path = tempfile.mkdtemp(prefix="switchboard-metrics-")
    Path(path, _OWNER).write_text(str(os.getpid()))
    return path


def across_processes() -> str:
    """Count in the directory of ``MULTIPROC_ENV`` and serve the sum of every process's
    counts; the directory, which must be set before prometheus_client is imported."""
    global _shared_dir
    path = os.environ.get(MULTIPROC_ENV)
    if not path or not os.path.isdir(path):
        raise RuntimeError(f"{MULTIPROC_ENV} is not set to a directory")
    _shared_dir = path
    return path


def remove_shared_dir() -> None:
    """Remove the directory if this process made it (``new_shared_dir``); one given in the
    environment by whoever started the service is theirs to keep."""
    if _shared_dir is None:
        return
    owner = Path(_shared_dir, _OWNER)
    if owner.exists() and owner.read_text() == str(os.getpid()):
        shutil.rmtree(_shared_dir, ignore_errors=True)
