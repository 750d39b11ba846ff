"""On-call: investigates an incident with read-only tools and hands a rollback to the focused
rollback agent, which asks on-call to approve it before it runs.

The tools that read come from an MCP server (``[agents.oncall.mcp.ops]``): the small one
shipped beside it (``agent/examples/oncall_server.py``) or your own. The one native tool is
``rollback``, a handoff (``agent = "rollbacker"``): its arguments model says what the model
may hand over. The rollback agent uses this module too, with no native tools at all.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from agent.config import ToolConfig
from agent.tools import Tool


class Rollback(BaseModel):
    """Hand a rollback to the rollback agent: it asks on-call to approve it, runs it once
    approved, and tells you what it did."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    service: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Service to roll back.")
    to_version: str = Field(
        pattern=r"^v\d+\.\d+\.\d+$", description="The version it ran before, like v2.4.0."
    )
    reason: str = Field(description="Why: which deploy lines up with which errors.")


def tools(config: Mapping[str, ToolConfig]) -> list[Tool]:
    unknown = sorted(set(config) - {"rollback"})
    if unknown:
        raise ValueError(
            f"oncall takes its tools from MCP servers ([agents.<name>.mcp.<server>]); "
            f"its only native tool is the rollback handoff, not {unknown}"
        )
    rollback = config.get("rollback")
    if rollback is None:
        return []
    action = rollback.action("rollback")
    if rollback.agent is None or action is None:
        raise ValueError("tool rollback is a handoff: give agent = ... and message = ...")
    return [
        Tool(
            name="rollback",
            description=" ".join((Rollback.__doc__ or "").split()),
            args=Rollback,
            run=action,
            # The approval is the rollback agent's, on the call that changes something; the
            # file may still ask for one here too.
            needs_approval=bool(rollback.needs_approval),
            approvers=rollback.addresses(rollback.approvers),
            notify=rollback.asked(),
            approval=rollback.approval,
        )
    ]
