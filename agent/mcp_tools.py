"""Tools from MCP servers, as the agent core sees them: a small Protocol for the server (the
SDK adapter is ``channels/mcp``), and the ``Tool`` each listed tool becomes.

An MCP tool is an ordinary ``Tool``: its arguments are validated before anything runs, it is
offered in the step schema, and it goes through the ledger and the approval path. What the
configuration says decides its approval: read-only (``read_only`` patterns) runs at once,
anything else waits for a human. The server's annotations are only shown to that human.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from agent.errors import McpServerDown, ToolFailed, ToolRefused
from agent.mcp_config import McpServerConfig
from agent.mcp_schema import NAME, McpArguments, arguments_model, strict_input_schema
from agent.tools import Tool

OUTPUT_LIMIT = 4000


class RemoteTool(BaseModel):
    """One entry of a server's ``tools/list``, as the adapter hands it inward."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    input_schema: dict[str, Any]
    read_only_hint: bool | None = None
    destructive_hint: bool | None = None
    idempotent_hint: bool | None = None
    open_world_hint: bool | None = None


class RemoteResult(BaseModel):
    """What a ``tools/call`` returned: its content as text, and whether the tool failed."""

    model_config = ConfigDict(frozen=True)

    text: str
    is_error: bool = False


class McpServer(Protocol):
    """A session with one MCP server, opened when first needed and again after a failure.

    Every method raises ``McpServerDown`` when the server cannot be started or reached.
    """

    async def list_tools(self) -> list[RemoteTool]: ...

    async def call_tool(self, name: str, arguments: dict[str, Any], within: float) -> RemoteResult:
        """Call the tool, giving up after ``within`` seconds (a tool error then)."""
        ...

    async def close(self) -> None: ...


OnChange = Callable[[], Awaitable[None]]


class Connector(Protocol):
    """Makes the adapter for one server; ``on_change`` is awaited when the server says its
    tool list changed (``notifications/tools/list_changed``) or after a reconnection."""

    def __call__(self, name: str, config: McpServerConfig, on_change: OnChange) -> McpServer: ...


def hints(server: str, remote: RemoteTool) -> str:
    """The server's annotations, worded for an approver who must not take them on trust."""
    said = [
        word
        for value, yes, no in (
            (remote.read_only_hint, "read-only", "not read-only"),
            (remote.destructive_hint, "destructive", "not destructive"),
            (remote.idempotent_hint, "idempotent", "not idempotent"),
            (remote.open_world_hint, "reaches outside systems", "closed-world"),
        )
        if value is not None
        for word in [yes if value else no]
    ]
    if not said:
        return f"MCP server {server} gives no hints about this tool."
    return f"MCP server {server} says: {', '.join(said)} (hints from the server, not verified)."


def build_tool(
    exposed: str, server: str, config: McpServerConfig, client: McpServer, remote: RemoteTool
) -> Tool:
    """The ``Tool`` for one listed MCP tool, or ToolRefused saying why it cannot be offered."""
    if not NAME.match(exposed):
        raise ToolRefused(exposed, "tool names must be 1-64 letters, digits, '_' or '-'")
    strict = strict_input_schema(exposed, remote.input_schema)
    description = " ".join(remote.description.split()) or f"The tool {remote.name}."
    args = arguments_model(exposed, description, remote.input_schema, strict)
    read_only = config.is_read_only(remote.name)
    overrides = config.tools.get(remote.name)
    timeout = config.timeout

    async def run(arguments: BaseModel) -> str:
        assert isinstance(arguments, McpArguments)
        try:
            result = await client.call_tool(remote.name, arguments.call_arguments(), timeout)
        except McpServerDown as exc:
            raise ToolFailed(exposed, f"MCP server {server} is unreachable: {exc.reason}") from None
        if result.is_error:
            raise ToolFailed(exposed, result.text[:300] or "the tool reported an error")
        return result.text[:OUTPUT_LIMIT]

    return Tool(
        name=exposed,
        description=description,
        args=args,
        run=run,
        needs_approval=not read_only,
        side_effects=not read_only,
        approvers=overrides.approver_addresses() if overrides else (),
        notify=overrides.asked() if overrides else (),
        approval=overrides.approval if overrides else None,
        approval_note="" if read_only else hints(server, remote),
    )
