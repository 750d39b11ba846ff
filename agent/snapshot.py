"""A thread's snapshot: what a run needs of the log before a position, so it loads only the tail.

The log is cut at the start of a turn once everything before it is settled for good (see
``cut``). What the reducer and the context renderer read of the log before the cut is then
small: the context shows those turns as stored pieces (``agent.fitting``: verbatim text and
summary line with their token counts, only for the newest turns that could still be shown),
and the reducer reads, of that prefix, only the latest step per prompt version (the thread's
sticky A/B version) and any tool call with no result there (a call whose worker died: the
ledger says "started" and the run asks a human). Everything else before the cut is closed:
its requests decided and their calls run, its errors followed by progress, its failed
deliveries and due timers answered. Execution state (step count, error streak) and the
ledger are kept apart already (store.keys).

A run over carried events + tail decides what a run over the whole log decides, and renders
the same text. The snapshot is a function of the log (and the prompt version, budget and
token counting the pieces were made for): ``build`` makes it from the whole log, ``advance``
from the previous one and the tail, and both give the same. The log stays the truth: a
snapshot of another format version, prompt, budget or counting, or one that does not parse,
is built again from the log; a thread stored before snapshots existed simply has none yet.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from agent import compaction, tokens
from agent.context import template, thread_block, visible_events
from agent.fitting import NO_PRIOR, Piece, Prior, make_piece, summaries
from agent.tools import Agent
from model.events import (
    AgentStep,
    ApprovalDue,
    ApprovalRequest,
    DeliveryFailed,
    Event,
    Granted,
    Offered,
    Rerouted,
    ToolError,
    ToolResult,
    ToolStarted,
    UserMessage,
)
from store.snapshot import Stored

VERSION = 1
"""The snapshot's format. Another version found stored is not read: it is built again."""
STEP_TURNS = 8
"""The cut moves in steps of this many turns: one snapshot write per few turns, not per run."""


class Snapshot(BaseModel):
    """The log before ``upto``, as far as a run still needs it."""

    model_config = ConfigDict(frozen=True)

    version: int = VERSION
    upto: int
    """Events of the log it covers: the tail starts there, with a human's message."""
    prompt: str
    budget: int
    counting: str
    """The prompt version, budget and token counting the pieces were made for."""
    turns: int
    """Turns before the cut."""
    events: int
    """Visible events (as the model would see them) before the cut."""
    carried: list[Event]
    """The events before the cut the reducer still reads (see the module's docstring)."""
    open_calls: list[str] = []
    """Of those, the tool calls with no result before the cut."""
    pieces: list[Piece]
    """The newest turns before the cut as the context may show them; older ones only count."""

    def prior(self) -> Prior:
        return Prior(turns=self.turns, events=self.events, pieces=self.pieces)

    def stored(self) -> Stored:
        # Compressed: its turn texts repeat each other, and every run reads it.
        return Stored(self.upto, zlib.compress(self.model_dump_json(exclude_none=True).encode()))

    def fits(self, agent: Agent, counter: tokens.Counter) -> bool:
        """Made for this format, prompt version, budget and counting."""
        return (self.version, self.prompt, self.budget, self.counting) == (
            VERSION,
            agent.prompt,
            agent.context_tokens,
            counter.method,
        )


def parse(body: bytes | None) -> Snapshot | None:
    """The stored snapshot, or None when there is none or it cannot be read (then rebuilt)."""
    if not body:
        return None
    try:
        snap = Snapshot.model_validate_json(zlib.decompress(body))
    except (zlib.error, ValidationError):
        return None
    return snap if snap.version == VERSION else None


@dataclass(frozen=True)
class Cut:
    """Where the tail can be cut: ``raw`` events and ``turns`` visible turns of it."""

    raw: int
    turns: int


def cut(tail: Sequence[Event], visible: Sequence[Event], turns_before: int) -> Cut | None:
    """The latest turn start of ``tail`` before which everything is settled for good.

    ``tail`` starts with a human's message (or is the whole log); ``visible`` is what
    ``visible_events`` leaves of it. A cut must leave the latest ``KEEP_TURNS`` turns and
    everything from the first open item (``compaction.first_open``: a pending request, a
    visible error) after it, and before it no approval whose call has no result (a quorum
    still counting), no failed delivery without its reroute, no due timer without its offer.
    It falls on a multiple of ``STEP_TURNS`` turns of the whole log.
    """
    vturns = compaction.turns(visible)
    keep_from = min(
        [compaction.first_open(visible), *(t.start for t in vturns[-compaction.KEEP_TURNS :])]
    )
    limit = _first_unsettled(tail)
    starts = [i for i, e in enumerate(tail) if isinstance(e, UserMessage)]
    # Human messages are never hidden: the n-th one starts the same turn in both lists.
    offset = len(vturns) - len(starts)  # 1 when the log starts with something else
    best: Cut | None = None
    for j in range(1, len(vturns)):
        raw = starts[j - offset] if j - offset >= 0 else 0
        if vturns[j].start > keep_from or raw > limit:
            break
        if (turns_before + j) % STEP_TURNS == 0:
            best = Cut(raw=raw, turns=j)
    return best


def _first_unsettled(tail: Sequence[Event]) -> int:
    results = {e.call_id for e in tail if isinstance(e, ToolResult | ToolError) and e.call_id}
    rerouted = {e.outbox_id for e in tail if isinstance(e, Rerouted)}
    offered = {e.timer for e in tail if isinstance(e, Offered)}
    for i, e in enumerate(tail):
        if isinstance(e, ApprovalRequest) and e.call_id not in results:
            return i
        # A long-running call or a handoff still waiting: the run loop finds it in the log.
        if isinstance(e, ToolStarted) and e.call_id not in results:
            return i
        if isinstance(e, DeliveryFailed) and e.outbox_id not in rerouted:
            return i
        if isinstance(e, ApprovalDue) and e.timer not in offered:
            return i
    return len(tail)


def carried(
    previous: Sequence[Event], open_calls: Sequence[str], events: Sequence[Event]
) -> tuple[list[Event], list[str]]:
    """Of a settled prefix (what a previous snapshot carried, then ``events``), what the
    reducer reads: the latest step per prompt version, the latest grant per tool (it covers
    later calls), and the steps of tool calls with no result in it (``open_calls``, the ids:
    a result may come later). In log order."""
    results = {e.call_id for e in events if isinstance(e, ToolResult | ToolError) and e.call_id}
    still = set(open_calls) - results
    latest: dict[str, int] = {}
    grants: dict[str, int] = {}
    keep: set[int] = set()
    every = [*previous, *events]
    for i, e in enumerate(every):
        if isinstance(e, Granted):
            grants[e.tool] = i
        if isinstance(e, AgentStep):
            latest[e.prompt] = i
            if i >= len(previous) and e.call_id and e.call_id not in results:
                still.add(e.call_id)
            if e.call_id in still:
                keep.add(i)
    keep |= set(latest.values()) | set(grants.values())
    kept = [every[i] for i in sorted(keep)]
    return kept, [c for c in dict.fromkeys(_call(e) for e in kept) if c in still]


def _call(e: Event) -> str:
    return (e.call_id or "") if isinstance(e, AgentStep) else ""


def advance(
    agent: Agent,
    previous: Snapshot | None,
    events: Sequence[Event],
    counter: tokens.Counter | None = None,
) -> Snapshot | None:
    """The snapshot after this run, or None if it stays where it is.

    ``events`` are the run's: ``previous.carried`` then the log from ``previous.upto`` on
    (the whole log when ``previous`` is None). ``agent`` runs the thread's prompt version;
    ``previous`` must fit it (``Snapshot.fits``), else build again from the whole log.
    """
    counter = counter or tokens.counter()
    base = previous or _EMPTY
    skip = len(previous.carried) if previous else 0
    tail = events[skip:]
    # A cut falls after the tail's j-th turn, j at most its human messages (each starts a
    # turn), on a multiple of STEP_TURNS of the whole log: most runs can tell none does
    # without reading the tail any further.
    humans = sum(isinstance(e, UserMessage) for e in tail)
    if (base.turns + humans) // STEP_TURNS == base.turns // STEP_TURNS:
        return None
    visible = visible_events(tail)
    at = cut(tail, visible, base.turns)
    if at is None:
        return None
    vturns = compaction.turns(visible)[: at.turns]
    block = thread_block(template(agent.prompt), agent)
    prior = previous.prior() if previous else NO_PRIOR
    written = summaries(tail)  # model-written lines (agent.summaries), by turn
    fresh: list[Piece] = []
    verbatim = lines = 0  # token sums from the newest turn back, to know when to stop
    for j, t in reversed(list(enumerate(vturns))):
        if verbatim > agent.context_tokens and lines > agent.context_tokens:
            break  # neither the text nor the line of older turns could ever be shown
        piece = make_piece(block, counter, visible[t.start : t.end], written.get(base.turns + j))
        piece = piece.model_copy(update={"end": base.events + t.end})
        fresh.append(piece)
        verbatim += piece.tokens + 1
        lines += piece.line_tokens + 1
    pieces = _trim([*prior.pieces, *reversed(fresh)], agent.context_tokens)
    kept, open_calls = carried(events[:skip], base.open_calls, tail[: at.raw])
    return Snapshot(
        upto=base.upto + at.raw,
        prompt=agent.prompt,
        budget=agent.context_tokens,
        counting=counter.method,
        turns=base.turns + at.turns,
        events=base.events + (vturns[-1].end if vturns else 0),
        carried=kept,
        open_calls=open_calls,
        pieces=pieces,
    )


def build(
    agent: Agent, log: Sequence[Event], counter: tokens.Counter | None = None
) -> Snapshot | None:
    """The snapshot of this log, from the log alone (None: nothing to cut yet)."""
    return advance(agent, None, log, counter)


def _trim(pieces: Sequence[Piece], budget: int) -> list[Piece]:
    """Only the newest pieces whose text, or line, could still be shown within ``budget``."""
    out: list[Piece] = []
    verbatim = lines = 0
    for p in reversed(pieces):
        verbatim += p.tokens + 1
        lines += p.line_tokens + 1
        shown = p if verbatim <= budget else p.model_copy(update={"text": None})
        out.append(shown)  # the first beyond both too: the oldest a fit reaches (its end)
        if verbatim > budget and lines > budget:
            break
    return out[::-1]


_EMPTY = Snapshot(
    upto=0, prompt="", budget=0, counting="", turns=0, events=0, carried=[], pieces=[]
)
