"""On-call: investigates an incident with read-only tools and asks a human before it rolls
anything back. Its tools all come from an MCP server (``[agents.oncall.mcp.ops]``): the small
one shipped beside it (``agent/examples/oncall_server.py``) or your own; it has no native
tools of its own."""

from __future__ import annotations

from collections.abc import Mapping

from agent.config import ToolConfig
from agent.tools import Tool


def tools(config: Mapping[str, ToolConfig]) -> list[Tool]:
    if config:
        raise ValueError(
            f"oncall takes its tools from MCP servers ([agents.<name>.mcp.<server>]), "
            f"not [tools]: {sorted(config)}"
        )
    return []
