"""The operator's file of agents and tools (TOML, read with the standard library).

default_agent = "deploybot"

[agents.deploybot]
module = "agent.examples.deploybot"   # a module with tools(config) -> list[Tool]
prompt = "deploybot/v1"               # agent/prompts/deploybot/v1.j2, or A/B weights
max_steps = 10
context_tokens = 16000                # the context's budget (agent/context.py compacts past it)

[agents.deploybot.tools.deploy]
command = ["./deploy.sh", "{tag}", "{env}"]   # or: url = "https://..."
approvers = ["slack:U0123", "sms:+15551234567", "rest:*"]
notify = ["sms:+15551234567"]                  # where approval requests go
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agent import addresses, routing
from agent.actions import CommandAction, HttpAction
from agent.context import PROMPTS_DIR, template
from agent.errors import ConfigError
from agent.handoff import DEFAULT_DEPTH, Handoff
from agent.mcp_config import McpServerConfig
from agent.policy import ApprovalConfig
from agent.tools import Address, Agent, Tool, ToolFunction
from agent.triggers import ScheduleConfig, TriggerConfig


class ToolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] | None = None
    url: str | None = None
    method: str = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = 120.0
    approvers: list[str] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list)
    needs_approval: bool | None = None
    """Overrides the tool's own default."""
    approval: ApprovalConfig | None = None
    """Who is asked when (a route of stages), reminders, the deadline: agent.policy."""
    long_running: bool = False
    """The tool may answer "started" (agent.longrun): its result comes to
    ``POST /v1/calls/{call_id}/result`` within ``timeout`` seconds, else it fails."""
    agent: str | None = None
    """A handoff: the call starts a thread on this agent (agent.handoff) instead of running."""
    message: str | None = None
    """A handoff's first message to the other agent: Jinja2 over the call's arguments."""
    max_depth: int = Field(default=DEFAULT_DEPTH, ge=1, le=20)
    """Handoffs in a chain (from the thread a human started) beyond which this one is refused."""

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, values: list[str]) -> list[str]:
        return [addresses.check(v, "approver") for v in values]

    @field_validator("notify")
    @classmethod
    def _notify(cls, values: list[str]) -> list[str]:
        return [addresses.check(v, "notify") for v in values]

    @model_validator(mode="after")
    def _one_action(self) -> ToolConfig:
        if self.command is not None and self.url is not None:
            raise ValueError("give a command or a url, not both")
        if self.agent is not None:
            if self.command is not None or self.url is not None:
                raise ValueError("a handoff (agent) runs no command or url")
            if not self.message:
                raise ValueError("a handoff (agent) needs a message")
            Handoff(self.agent, self.message)  # the template must parse
        elif self.message is not None:
            raise ValueError("message is for a handoff: give the agent it goes to")
        if self.approval and self.approval.route and self.notify:
            raise ValueError("give notify or approval.route, not both")
        for asked in self.approval.addresses() if self.approval else []:
            # Asking someone who may not decide would only waste their time; a Slack channel
            # is a place, where the approvers are mentioned.
            if addresses.is_place(asked):
                continue
            if not any(_covers(a, asked) for a in self.approvers):
                raise ValueError(f"route address {asked} is not one of the approvers")
        return self

    def asked(self) -> tuple[Address, ...]:
        """Where approval requests go: the route's addresses in order, else ``notify``."""
        route = self.approval.addresses() if self.approval else []
        return self.addresses(route or self.notify)

    def action(self, name: str) -> ToolFunction | None:
        if self.agent is not None:
            return _handed_off
        if self.command is not None:
            return CommandAction(name, self.command, self.timeout)
        if self.url is not None:
            return HttpAction(name, self.url, self.method, self.headers, self.timeout)
        return None

    def addresses(self, which: list[str]) -> tuple[Address, ...]:
        return tuple(Address.parse(a) for a in which)


async def _handed_off(_: BaseModel) -> str:
    # Never called: the run loop starts the other agent's thread instead (agent.waits).
    raise AssertionError("a handoff tool does not run")


def with_config(tool: Tool, config: ToolConfig | None) -> Tool:
    """The tool with what the file adds to any tool: long-running, a handoff."""
    if config is None:
        return tool
    if config.agent is not None and config.message is not None:
        handoff = Handoff(config.agent, config.message, config.max_depth)
        return replace(tool, handoff=handoff)
    if config.long_running:
        return replace(tool, long_running=True, timeout=config.timeout)
    return tool


def _covers(approver: str, address: str) -> bool:
    channel, _, who = approver.partition(":")
    return approver == address or (who == "*" and address.startswith(f"{channel}:"))


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    module: str
    prompt: str | dict[str, int]
    """One version, or versions with weights: ``{ "deploybot/v1" = 90, "deploybot/v2" = 10 }``."""
    max_steps: int = Field(default=10, ge=1, le=50)
    context_tokens: int = Field(default=16_000, ge=1_000)
    """Token budget of the model's context (agent.context, agent.compaction)."""
    request_timeout: float | None = Field(default=None, gt=0)
    """Seconds before an unanswered question or approval expires."""
    on_new_message: Literal["withdraw", "keep"] = "withdraw"
    """A human writing while an approval is pending withdraws it (the ask may have changed)."""
    summarize: Literal["code", "model"] = "code"
    """Who writes the summary lines of compacted turns (agent.summaries)."""
    description: str = ""
    tools: dict[str, ToolConfig] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    """Free-form settings for channels (allowed senders, addresses...)."""
    mcp: dict[str, McpServerConfig] = Field(default_factory=dict)
    """``[agents.<name>.mcp.<server>]``: MCP servers whose tools it uses (agent.toolbox)."""


class PersonConfig(BaseModel):
    """``[people.<name>]``: one person's addresses, so quorum and self-approval count people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slack: str | None = None
    email: str | None = None
    sms: str | None = None
    rest: str | None = None


class FileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default_agent: str | None = None
    agents: dict[str, AgentConfig]
    people: dict[str, PersonConfig] = Field(default_factory=dict)
    triggers: dict[str, TriggerConfig] = Field(default_factory=dict)
    schedules: dict[str, ScheduleConfig] = Field(default_factory=dict)

    def people_by_address(self) -> dict[str, str]:
        """``channel:address`` -> person name; an address named twice is refused."""
        found: dict[str, str] = {}
        for name, person in self.people.items():
            for channel, address in person.model_dump(exclude_none=True).items():
                target = f"{channel}:{address}"
                if target in found:
                    raise ConfigError(f"{target} belongs to both {found[target]} and {name}")
                found[target] = name
        return found


def _check_editable(agent: str, tool: Tool) -> None:
    """``editable`` must name the tool's own arguments: a typo would offer nothing to edit."""
    editable = tool.approval.editable if tool.approval else []
    unknown = [field for field in editable if field not in tool.args.model_fields]
    if unknown:
        raise ConfigError(
            f"agent {agent}: tool {tool.name}: editable names no argument of the tool: "
            f"{', '.join(unknown)} (its arguments: {', '.join(tool.args.model_fields)})"
        )


def _weights(name: str, prompt: str | dict[str, int]) -> dict[str, int]:
    if isinstance(prompt, str):
        return {prompt: 1}
    if not prompt or any(w < 0 for w in prompt.values()) or sum(prompt.values()) <= 0:
        raise ConfigError(f"agent {name}: prompt weights must be >= 0 with a positive total")
    return dict(prompt)


ToolsFactory = Callable[[Mapping[str, ToolConfig]], list[Tool]]


def build_agent(
    name: str,
    config: AgentConfig,
    prompts: Path = PROMPTS_DIR,
    people: Mapping[str, str] | None = None,
) -> Agent:
    try:
        module = importlib.import_module(config.module)
    except ImportError as exc:
        raise ConfigError(f"agent {name}: cannot import {config.module}: {exc}") from None
    factory = cast(ToolsFactory | None, getattr(module, "tools", None))
    if factory is None:
        raise ConfigError(f"agent {name}: {config.module} has no tools(config) function")
    try:
        tools = [with_config(t, config.tools.get(t.name)) for t in factory(config.tools)]
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"agent {name}: {exc}") from None
    for tool in tools:
        _check_editable(name, tool)
    weights = _weights(name, config.prompt)
    for prompt in weights:
        template(prompt, prompts)  # fail at start, not on the first message
    return Agent(
        name=name,
        tools={t.name: t for t in tools},
        # The heaviest version stands for the agent where no thread is involved.
        prompt=max(sorted(weights), key=lambda p: weights[p]),
        prompt_weights=weights if len(weights) > 1 else {},
        max_steps=config.max_steps,
        context_tokens=config.context_tokens,
        request_timeout=config.request_timeout,
        description=config.description,
        settings=config.settings,
        people=dict(people or {}),
        on_new_message=config.on_new_message,
        summarize=config.summarize,
    )


class Registry:
    """The deployment's agents, and which one a channel uses when nothing says otherwise."""

    def __init__(
        self,
        agents: Mapping[str, Agent],
        default: str,
        triggers: Mapping[str, TriggerConfig] | None = None,
        schedules: Mapping[str, ScheduleConfig] | None = None,
    ) -> None:
        if default not in agents:
            raise ConfigError(f"default agent {default!r} is not configured")
        self.agents = dict(agents)
        self.default = default
        self.triggers = dict(triggers or {})
        self.schedules = dict(schedules or {})
        for kind, started in (("triggers", self.triggers), ("schedules", self.schedules)):
            for name, item in started.items():
                if item.agent not in self.agents:
                    raise ConfigError(f"{kind}.{name}: agent {item.agent!r} is not configured")
        self.owners = routing.owners(self.agents)
        """``channel:address`` -> the agent that claims it (agent.routing); checked here."""
        self.mcp: dict[str, dict[str, McpServerConfig]] = {}
        """Agent -> its MCP servers; their tools join ``agents`` once listed (agent.toolbox)."""

    def get(self, name: str | None) -> Agent | None:
        return self.agents.get(name or self.default)

    def owner(self, channel: str, address: str) -> str | None:
        """The agent whose own address this is on ``channel``, if one claims it."""
        return self.owners.get(f"{channel}:{routing.normal(channel, address)}")


def one_line(exc: ValidationError) -> str:
    """``agents.deploybot.tools.deploy.approvers.0: 'slak:U1': unknown channel ...``"""
    parts = []
    for error in exc.errors():
        where = ".".join(str(x) for x in error["loc"])
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def load(path: Path, prompts: Path = PROMPTS_DIR) -> Registry:
    try:
        raw = tomllib.loads(path.read_text())
        config = FileConfig.model_validate(raw)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found (SWITCHBOARD_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path}: {one_line(exc)}") from None
    if not config.agents:
        raise ConfigError(f"{path}: no agents configured")
    people = config.people_by_address()
    agents = {name: build_agent(name, ac, prompts, people) for name, ac in config.agents.items()}
    for name, agent in agents.items():
        for tool in agent.tools.values():
            if tool.handoff and tool.handoff.agent not in agents:
                raise ConfigError(
                    f"{path}: agents.{name}.tools.{tool.name}.agent: "
                    f"no agent {tool.handoff.agent!r} is configured"
                )
    default = config.default_agent or next(iter(agents))
    registry = Registry(agents, default, config.triggers, config.schedules)
    registry.mcp = {name: dict(ac.mcp) for name, ac in config.agents.items() if ac.mcp}
    return registry
