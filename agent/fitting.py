"""Fitting a thread's text into the budget, turn by turn, from fresh or stored turn texts.

The thread text is its settled turns (``agent.compaction``) then the rest (open and latest
turns). Each settled turn is a ``Piece``: its verbatim text and a summary line, with their
token counts. A fresh thread computes the pieces it weighs as it goes; a run resuming from
a snapshot (``agent.snapshot``) has the pieces of its compacted prefix stored, so neither
renders nor counts them again. Both give the same text: the text is the pieces joined, and
the count is the sum of the pieces' counts (one token more per join, counted high).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from agent import compaction, tokens
from agent.compaction import Compaction
from model.events import Event, Summarized

# Of the room left beside the open and latest turns, the share older turns may fill
# verbatim when the thread must be compacted; the rest is for the summary lines.
VERBATIM_SHARE = 0.75
# Tokens the <earlier> element's own tags take (counted high).
_EARLIER_TAGS = 16


class Piece(BaseModel):
    """One settled turn as the context may show it: verbatim, or as its summary line."""

    model_config = ConfigDict(frozen=True)

    text: str | None = None
    """The turn rendered verbatim; None when too old ever to be shown so (only counted)."""
    tokens: int
    line: str
    line_tokens: int
    end: int
    """Visible events of the thread up to the end of this turn."""


@dataclass(frozen=True)
class Earlier:
    """The summary lines the template shows before the verbatim events."""

    lines: list[str]
    turns: int
    omitted: int


Block = Callable[[Sequence[Event], Earlier | None], str]
"""Renders the template's ``thread`` block for some events (and the summary lines)."""


@dataclass(frozen=True)
class Prior:
    """The compacted prefix a snapshot holds: its turn count and its newest turns' pieces."""

    turns: int
    events: int
    """Visible events of the prefix."""
    pieces: Sequence[Piece]
    """The newest turns of the prefix (the oldest ``turns - len(pieces)`` only counted)."""


NO_PRIOR = Prior(turns=0, events=0, pieces=())

WHOLE_FIRST = 64
"""Up to this many visible events (and no snapshot), ``fit`` first tries the whole thread in
one render and one count; above it, a failed try would cost a long render for nothing."""


class Candidates:
    """The settled turns, oldest first: the prior's stored pieces, then this thread's own."""

    def __init__(
        self,
        block: Block,
        counter: tokens.Counter,
        visible: Sequence[Event],
        own: Sequence[compaction.Turn],
        prior: Prior,
        summaries: Mapping[int, str],
    ) -> None:
        self._block, self._counter, self._visible, self._own = block, counter, visible, own
        self._prior, self._summaries = prior, summaries
        self._missing = prior.turns - len(prior.pieces)
        self._cache: dict[int, Piece] = {}
        self.count = prior.turns + len(own)

    def piece(self, i: int) -> Piece | None:
        """Turn ``i``'s piece; None for a prior turn too old to have one kept."""
        if i < self._prior.turns:
            j = i - self._missing
            return self._prior.pieces[j] if j >= 0 else None
        found = self._cache.get(i)
        if found is None:
            turn = self._own[i - self._prior.turns]
            turn_events = self._visible[turn.start : turn.end]
            line = self._summaries.get(i)
            fresh = make_piece(self._block, self._counter, turn_events, line)
            found = fresh.model_copy(update={"end": self._prior.events + turn.end})
            self._cache[i] = found
        return found

    def end(self, i: int) -> int:
        piece = self.piece(i)
        if piece is not None:
            return piece.end
        first = self._prior.pieces[0] if self._prior.pieces else None
        return first.end if first else self._prior.events  # only counted: the oldest known


def make_piece(
    block: Block, counter: tokens.Counter, events: Sequence[Event], line: str | None = None
) -> Piece:
    """A settled turn's piece (``end`` relative to the turn: the caller places it).

    ``line``: the turn's stored summary (``Summarized``), else the code writes one."""
    text = block(events, None)
    line = compaction.summary_line(events) if line is None else line
    return Piece(
        text=text,
        tokens=counter.count(text),
        line=line,
        line_tokens=counter.count(line),
        end=len(events),
    )


def _join(parts: Sequence[str | None]) -> str:
    return "\n".join(p for p in parts if p)


def fit(
    block: Block,
    budget: int,
    visible: Sequence[Event],
    fixed: int,
    counter: tokens.Counter,
    prior: Prior = NO_PRIOR,
    summaries: Mapping[int, str] | None = None,
) -> tuple[str, int | None, Compaction | None]:
    """The thread's text within the budget: whole if it fits, else compacted; what it counts
    with ``fixed``, or None for a whole thread that a byte bound found within the budget (it
    is not counted: the caller counts it if it needs the figure).

    Settled turns are weighed newest first, so only what can be shown is rendered and
    counted: a thread of 10,000 events costs about what its budget holds, not its length.
    One more turn is summarized (or one more summary left out) while the sum is over.
    ``summaries``: stored summary lines by turn (counted from the thread's first turn).
    """
    if prior.turns == 0 and len(visible) <= WHOLE_FIRST:
        # Most threads are short: render them whole once, and if even a byte per token (a
        # token is never shorter) fits the budget, that is the context, with no turn weighed
        # and nothing counted.
        whole = block(visible, None)
        if fixed + len(whole.encode()) <= budget:
            return whole, None, None
    own = compaction.compactable(visible)
    cands = Candidates(block, counter, visible, own, prior, summaries or {})
    n = cands.count
    rest = block(visible[own[-1].end :] if own else visible, None)
    rest_cost = counter.count(rest) if rest else 0
    left = budget - fixed - rest_cost
    kept: list[int] = []  # verbatim costs of the newest settled turns, newest first
    spent = 0
    for i in reversed(range(n)):
        piece = cands.piece(i)
        if piece is None or piece.text is None or spent + piece.tokens + 1 > left:
            break
        kept.append(piece.tokens + 1)
        spent += piece.tokens + 1
    if len(kept) == n:
        used = fixed + spent + rest_cost
        if used <= budget:
            return _join([_text(cands, i) for i in range(n)] + [rest]), used, None
    while kept and spent > left * VERBATIM_SHARE:
        spent -= kept.pop()
    k = max(n - len(kept), 1) if n else 0
    room = left - spent - _EARLIER_TAGS
    lines: list[tuple[str, int]] = []  # summary lines shown and their costs, newest first
    for i in reversed(range(k)):
        piece = cands.piece(i)
        if piece is None:
            break
        room -= piece.line_tokens + 1
        if room < 0:
            break
        lines.append((piece.line, piece.line_tokens + 1))
    omitted = k - len(lines)
    verbatim = sum(_cost(cands, i) for i in range(k, n))
    while True:
        earlier = _EARLIER_TAGS + sum(c for _, c in lines) if k else 0
        used = fixed + earlier + verbatim + rest_cost
        if used <= budget or (k == n and not lines):
            break  # within budget, or only open and latest turns left: shown whole
        if lines:
            lines.pop()
        else:
            verbatim -= _cost(cands, k)
            k += 1
        omitted += 1
    head = block((), Earlier([line for line, _ in lines[::-1]], k, omitted)) if k else None
    thread = _join([head, *(_text(cands, i) for i in range(k, n)), rest])
    return thread, used, Compaction(turns=k, events=cands.end(k - 1) if k else 0, omitted=omitted)


def _text(cands: Candidates, i: int) -> str | None:
    piece = cands.piece(i)
    return piece.text if piece else None


def _cost(cands: Candidates, i: int) -> int:
    piece = cands.piece(i)
    return piece.tokens + 1 if piece and piece.text is not None else 0


def summaries(events: Sequence[Event]) -> dict[int, str]:
    """The stored summary lines among ``events``, by turn (a later one for a turn wins)."""
    return {e.turn: e.text for e in events if isinstance(e, Summarized)}
