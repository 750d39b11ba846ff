"""A tool's approval policy, as the operator writes it under ``[...tools.<name>.approval]``.

Only configuration lives here (parsed and checked at start); what the policy makes happen
on a thread is decided by the reducer (agent.escalation) and carried out by the run loop.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """``30s``, ``15m``, ``4h``, ``2d`` (or a plain number of seconds) as seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration like 30s, 15m, 4h or 2d, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in the file as ``30s`` / ``15m`` / ``4h`` / ``2d``."""


class StageConfig(BaseModel):
    """One stage of a route: who is asked, and how long after the request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notify: list[str] = Field(min_length=1)
    after: Duration = 0.0


class ApprovalConfig(BaseModel):
    """``[agents.<a>.tools.<t>.approval]``: the names below are the interface."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: list[StageConfig] = Field(default_factory=list)
    remind_every: Duration | None = Field(default=None, gt=0)
    deadline: Duration | None = Field(default=None, gt=0)
    on_deadline: Literal["reject", "expire"] = "expire"
    quorum: int = Field(default=1, ge=1)
    self_approval: bool = True
    editable: list[str] = Field(default_factory=list)
    """Arguments an approver may change when approving (checked against the tool's model)."""
    grants: list[Literal["thread"]] = Field(default_factory=list)
    """``thread``: an approver may approve the tool for the rest of the thread."""

    @model_validator(mode="after")
    def _stages_in_order(self) -> ApprovalConfig:
        afters = [s.after for s in self.route]
        if afters and afters[0] != 0:
            raise ValueError("the first stage of a route is asked at once (no 'after')")
        if afters != sorted(afters):
            raise ValueError("route stages must come in the order of their 'after'")
        if self.deadline is not None and afters and afters[-1] >= self.deadline:
            raise ValueError("every route stage must come before the deadline")
        if len(set(self.editable)) != len(self.editable):
            raise ValueError("editable names an argument twice")
        return self

    def addresses(self) -> list[str]:
        """Every address the route asks, in order, once."""
        seen: dict[str, None] = {}
        for stage in self.route:
            for address in stage.notify:
                seen.setdefault(address, None)
        return list(seen)
