"""The MCP servers of every agent, in one process: their tools listed at start, listed again
when a server says its list changed, and merged into each agent's tools in the registry.
A server's ``allowed_tools`` (when given) keeps the tools it does not match from the agent.

Names: a tool keeps the server's name for it unless that name is taken (by a native tool, a
built-in intent, or a server configured earlier for the same agent); then it is offered as
``<server>__<tool>``. A server that cannot be reached at start leaves the agent running
without its tools, and is tried again every ``retry_every`` seconds; one that fails during a
call makes that call a tool error, and the next call reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from agent.config import Registry
from agent.errors import McpServerDown, ToolRefused
from agent.mcp_config import McpServerConfig
from agent.mcp_tools import Connector, McpServer, OnChange, RemoteTool, build_tool
from agent.steps import ASK, DONE
from agent.tools import Agent, Tool

log = logging.getLogger("switchboard.mcp")

RETRY_EVERY = 30.0
"""Seconds between attempts to list the tools of a server that was down."""


@dataclass
class _Server:
    agent: str
    name: str
    config: McpServerConfig
    client: McpServer | None = None
    listing: list[RemoteTool] | None = None
    """The tools last listed; None: never listed yet (down since the start)."""


class Toolbox:
    """Keeps ``registry.agents`` in step with what the agents' MCP servers offer."""

    def __init__(
        self,
        registry: Registry,
        servers: Mapping[str, Mapping[str, McpServerConfig]],
        connect: Connector,
        *,
        retry_every: float = RETRY_EVERY,
    ) -> None:
        self.registry = registry
        self.retry_every = retry_every
        self._native: dict[str, Agent] = {a: registry.agents[a] for a in servers}
        self._servers: list[_Server] = []
        self.refused: dict[str, list[str]] = {}
        """Agent -> why each tool not offered was refused (for the log and the checks)."""
        for agent, configs in servers.items():
            for name, server_config in configs.items():
                entry = _Server(agent, name, server_config)
                entry.client = connect(name, server_config, self._on_change(entry))
                self._servers.append(entry)

    def _on_change(self, entry: _Server) -> OnChange:
        async def changed() -> None:
            log.info("MCP server %s (agent %s): tool list changed", entry.name, entry.agent)
            if await self._list(entry):
                self._rebuild(entry.agent)

        return changed

    async def start(self) -> None:
        """List every server's tools (at once, each within its ``connect_timeout``)."""
        await asyncio.gather(*(self._list(s) for s in self._servers))
        for agent in self._native:
            self._rebuild(agent)

    async def refresh(self) -> None:
        """Try again every server that has never answered."""
        waiting = [s for s in self._servers if s.listing is None]
        listed = await asyncio.gather(*(self._list(s) for s in waiting))
        for agent in {s.agent for s, ok in zip(waiting, listed, strict=True) if ok}:
            self._rebuild(agent)

    async def run(self, stop: asyncio.Event) -> None:
        """Until the service stops: retry the servers that were down."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.retry_every)
            if not stop.is_set():
                await self.refresh()

    async def close(self) -> None:
        """End every session (a stdio server's process ends with it)."""
        await asyncio.gather(*(s.client.close() for s in self._servers if s.client))

    async def _list(self, entry: _Server) -> bool:
        assert entry.client is not None
        try:
            entry.listing = await entry.client.list_tools()
        except McpServerDown as exc:
            log.warning(
                "agent %s: %s; its tools are not offered until it answers", entry.agent, exc
            )
            return False
        log.info(
            "agent %s: MCP server %s offers %s",
            entry.agent,
            entry.name,
            ", ".join(t.name for t in entry.listing) or "no tools",
        )
        return True

    def _rebuild(self, agent: str) -> None:
        base = self._native[agent]
        tools: dict[str, Tool] = dict(base.tools)
        taken = {*tools, ASK, DONE}
        refused: list[str] = []
        for entry in self._servers:
            if entry.agent != agent or entry.listing is None or entry.client is None:
                continue
            for remote in entry.listing:
                if not entry.config.offers(remote.name):
                    continue  # the operator kept it from this agent (allowed_tools)
                exposed = remote.name
                if exposed in taken:
                    exposed = f"{entry.name}__{remote.name}"
                try:
                    if exposed in taken:
                        raise ToolRefused(exposed, "the name is taken twice")
                    tool = build_tool(exposed, entry.name, entry.config, entry.client, remote)
                except ToolRefused as exc:
                    refused.append(str(exc))
                    log.warning("agent %s: %s", agent, exc)
                    continue
                tools[exposed] = tool
                taken.add(exposed)
        self.refused[agent] = refused
        # A new Agent object: its step schema is built anew (agent.steps caches per agent),
        # and a run already under way keeps the tools it started with.
        self.registry.agents[agent] = replace(base, tools=tools)
