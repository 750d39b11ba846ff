"""Grants: an approval "for this thread" lets later calls of the same tool on the same thread
run without asking. A grant is an event in the thread's log (``Granted``), so it cannot cross
to another thread; each call it covers is recorded (``GrantUsed``).
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.tools import Tool
from model.events import Event, Granted, GrantUsed, arguments_hash


def granted(tool: Tool) -> bool:
    """Does the tool's policy (as configured now) offer a thread grant?"""
    return tool.approval is not None and "thread" in tool.approval.grants


def covering(events: Sequence[Event], tool: Tool) -> Granted | None:
    """The grant in force on this thread for ``tool``, if any (the latest one given).

    A grant given while the policy offered it stops covering calls once the operator removes
    ``grants`` from the tool: the configuration in force decides.
    """
    if not granted(tool):
        return None
    for e in reversed(events):
        if isinstance(e, Granted) and e.tool == tool.name:
            return e
    return None


def used(grant: Granted, call_id: str, arguments: dict[str, object]) -> GrantUsed:
    """The record that one call ran under ``grant``, bound to its exact arguments."""
    return GrantUsed(
        call_id=call_id,
        tool=grant.tool,
        request_id=grant.request_id,
        by=list(grant.by),
        arguments_hash=arguments_hash(arguments),
    )
