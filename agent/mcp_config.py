"""``[agents.<name>.mcp.<server>]``: an MCP server whose tools the agent may use.

[agents.oncall.mcp.ops]
command = ["{python}", "-m", "agent.examples.oncall_server"]   # stdio; or url = "http://..."
read_only = ["recent_errors", "get_*"]      # fnmatch on the server's tool names: no approval
# allowed_tools = ["recent_errors", "get_*", "rollback"]   # offer only these (default: all)

[agents.oncall.mcp.ops.tools.rollback]      # per tool, by the server's name for it
approvers = ["rest:*", "slack:U0123ABC"]
approval = { quorum = 1, deadline = "1h" }

Every tool not matched by ``read_only`` needs a human's approval before it runs: what a
server says about its tools (``readOnlyHint``...) is shown to the approver, never trusted.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent import addresses
from agent.policy import ApprovalConfig
from agent.tools import Address


class McpToolConfig(BaseModel):
    """``[agents.<a>.mcp.<server>.tools.<tool>]``: who decides, and how, for one MCP tool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approvers: list[str] = Field(default_factory=list)
    """Who may decide its approvals (``channel:address``). Empty: anyone on the thread's
    channel, as for native tools."""
    notify: list[str] = Field(default_factory=list)
    """Where its approval requests go. Empty: the thread's own channel."""
    approval: ApprovalConfig | None = None
    """Route stages, reminders, deadline, quorum: as ``[agents.<a>.tools.<t>.approval]``."""

    @field_validator("approvers", "notify")
    @classmethod
    def _addresses(cls, values: list[str], info: ValidationInfo) -> list[str]:
        role: addresses.Role = "approver" if info.field_name == "approvers" else "notify"
        return [addresses.check(v, role) for v in values]

    @model_validator(mode="after")
    def _consistent(self) -> McpToolConfig:
        if self.approval and self.approval.route and self.notify:
            raise ValueError("give notify or approval.route, not both")
        for asked in self.approval.addresses() if self.approval else []:
            if addresses.is_place(asked):
                continue  # asked in a Slack channel: the approvers are mentioned there
            if not any(addresses.covers(a, asked) for a in self.approvers):
                raise ValueError(f"route address {asked} is not one of the approvers")
        return self

    def approver_addresses(self) -> tuple[Address, ...]:
        return tuple(Address.parse(a) for a in self.approvers)

    def asked(self) -> tuple[Address, ...]:
        """Where approval requests go: the route's addresses in order, else ``notify``."""
        route = self.approval.addresses() if self.approval else []
        return tuple(Address.parse(a) for a in route or self.notify)


class McpServerConfig(BaseModel):
    """One MCP server: how to reach it, which of its tools are read-only, per-tool overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] | None = None
    """Start the server as a subprocess and talk over its stdin/stdout (argv, no shell;
    ``{python}`` is this interpreter)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment for a ``command`` server (it gets only PATH, HOME and the like
    otherwise: the service's secrets are not passed on)."""
    url: str | None = None
    """A streamable HTTP server's endpoint, e.g. ``http://127.0.0.1:9000/mcp``."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every HTTP request (an ``Authorization`` header, say)."""
    read_only: list[str] = Field(default_factory=list)
    """Tool names (fnmatch patterns: ``get_*``) that run without approval."""
    allowed_tools: list[str] | None = Field(default=None, min_length=1)
    """Tool names (fnmatch patterns) the agent is offered; the server's others it never
    sees. None: every tool the server lists."""
    tools: dict[str, McpToolConfig] = Field(default_factory=dict)
    timeout: float = Field(default=120.0, gt=0)
    """Seconds one tool call may take."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to start or reach the server and list its tools."""

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give a command (stdio) or a url (streamable HTTP), one of them")
        if self.command is not None and not self.command:
            raise ValueError("empty command")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http:// or https://, got {self.url!r}")
        if self.url is None and self.headers:
            raise ValueError("headers are for a url server")
        # A per-tool table for a tool never offered is a typo or a stale line: say so.
        hidden = sorted(name for name in self.tools if not self.offers(name))
        if hidden:
            raise ValueError(f"tools.{hidden[0]} is not offered: allowed_tools does not match it")
        return self

    def offers(self, tool: str) -> bool:
        """True when the agent may see the tool: ``allowed_tools`` matches it, or is unset."""
        allowed = self.allowed_tools
        return allowed is None or any(fnmatchcase(tool, pattern) for pattern in allowed)

    def is_read_only(self, tool: str) -> bool:
        """True when the operator listed the tool as read-only (case-sensitive fnmatch)."""
        return any(fnmatchcase(tool, pattern) for pattern in self.read_only)

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"
