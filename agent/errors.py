"""Errors of the agent core, named after who is at fault, carrying fields rather than prose."""

from __future__ import annotations

from model.events import LLMErrorKind


class AgentError(Exception):
    """Root of the agent core's errors."""


class ToolFailed(AgentError):
    """A tool refused its arguments or failed while running."""

    def __init__(self, tool: str, error: str) -> None:
        super().__init__(f"{tool}: {error}")
        self.tool = tool
        self.error = error


class LLMFailed(AgentError):
    """The model (or the server in front of it) did not give a usable next step."""

    def __init__(self, kind: LLMErrorKind, error: str) -> None:
        super().__init__(f"{kind}: {error}")
        self.kind: LLMErrorKind = kind
        self.error = error


class ConfigError(AgentError):
    """The operator's configuration is wrong: a missing module, prompt or setting."""


class ShuttingDown(AgentError):
    """The service is stopping: a run ends at its next step instead of starting one."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"stopping before the next step of {thread_id}")
        self.thread_id = thread_id


class ToolRefused(AgentError):
    """A tool from an MCP server cannot be offered to the model (its name or input schema
    does not fit the step schema); the server's other tools still are."""

    def __init__(self, tool: str, reason: str) -> None:
        super().__init__(f"MCP tool {tool} is not offered: {reason}")
        self.tool = tool
        self.reason = reason


class McpServerDown(AgentError):
    """An MCP server could not be started or reached, or dropped the connection."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"MCP server {server} is unreachable: {reason}")
        self.server = server
        self.reason = reason
