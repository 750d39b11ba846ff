"""DeployBot: list release tags, deploy a tag to an environment (approved by a human first),
roll an environment back. What each tool does is configured (a command or a URL); the
argument models here decide what the model may ask for, before anything runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.config import ToolConfig
from agent.tools import Tool

Environment = Literal["staging", "production"]


class ListTags(BaseModel):
    """List the release tags that can be deployed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Deploy(BaseModel):
    """Deploy a release tag to an environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tag: str = Field(pattern=r"^v\d+\.\d+\.\d+$", description="Release tag, like v1.2.3.")
    env: Environment = Field(description="Target environment.")


class Rollback(BaseModel):
    """Roll an environment back to the release it ran before."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    env: Environment = Field(description="Environment to roll back.")


_SPECS: dict[str, tuple[type[BaseModel], bool, bool]] = {
    # name: (arguments, needs approval by default, has side effects)
    "list_tags": (ListTags, False, False),
    "deploy": (Deploy, True, True),
    "rollback": (Rollback, False, True),
}


def tools(config: Mapping[str, ToolConfig]) -> list[Tool]:
    unknown = set(config) - set(_SPECS)
    if unknown:
        raise ValueError(f"deploybot has no tools {sorted(unknown)}")
    result = []
    for name, (args, approval, side_effects) in _SPECS.items():
        tool_config = config.get(name)
        if tool_config is None:
            raise ValueError(f"tool {name} needs a command or url")
        action = tool_config.action(name)
        if action is None:
            raise ValueError(f"tool {name} needs a command or url")
        result.append(
            Tool(
                name=name,
                description=(args.__doc__ or name).strip(),
                args=args,
                run=action,
                needs_approval=(
                    approval if tool_config.needs_approval is None else tool_config.needs_approval
                ),
                side_effects=side_effects,
                approvers=tool_config.addresses(tool_config.approvers),
                notify=tool_config.asked(),
                approval=tool_config.approval,
            )
        )
    return result
