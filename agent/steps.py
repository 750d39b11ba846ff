"""The model's answer: one ``NextStep``, in a JSON schema that OpenAI strict mode accepts.

Each agent gets its own NextStep type: the built-in intents plus one variant per tool, the
tool's argument fields flattened next to an ``intent`` tag. Strict mode refuses ``oneOf`` and
a union at the root, so the root is an object whose ``step`` is an ``anyOf`` of the variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agent.errors import LLMFailed
from agent.llm import Usage
from agent.tools import Agent, compact_validation_error

ASK = "request_more_information"
DONE = "done_for_now"


class RequestMoreInformation(BaseModel):
    """Ask the human a question when you cannot go on without their answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    intent: Literal["request_more_information"]
    message: str = Field(description="The question, written for the human.")


class DoneForNow(BaseModel):
    """Finish for now: tell the human the outcome, or what you need from them next."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    intent: Literal["done_for_now"]
    message: str = Field(description="The message to the human.")


@dataclass(frozen=True)
class Decision:
    """A parsed next step: the intent and its arguments, without the model's wrapper."""

    intent: str
    arguments: dict[str, Any]
    usage: Usage | None = None
    """What the model call that decided it cost (None: not reported)."""

    def usage_fields(self) -> dict[str, Any]:
        """The usage as ``AgentStep`` fields."""
        if self.usage is None:
            return {}
        return {
            "model": self.usage.model,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "latency_ms": self.usage.latency_ms,
        }


def _tool_variant(agent: Agent, name: str) -> type[BaseModel]:
    tool = agent.tools[name]
    fields: dict[str, Any] = {
        "intent": (Literal[name], Field(description=f"Call the tool `{name}`.")),
    }
    for field_name, info in tool.args.model_fields.items():
        fields[field_name] = (info.annotation, info)
    model = create_model(
        f"{name.title().replace('_', '')}Step",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__=tool.description,
        **fields,
    )
    return model


@cache
def step_model(agent: Agent) -> type[BaseModel]:
    """The root model the LLM answers in, for one agent (built once, then cached)."""
    variants: list[type[BaseModel]] = [_tool_variant(agent, n) for n in agent.tools]
    variants += [RequestMoreInformation, DoneForNow]
    union = Annotated[Union[tuple(variants)], Field(discriminator="intent")]  # type: ignore[valid-type]  # noqa: UP007
    fields: dict[str, Any] = {"step": (union, ...)}
    return create_model(
        "NextStep",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__="The single next step to take.",
        **fields,
    )


@cache
def response_schema(agent: Agent) -> dict[str, Any]:
    """The ``json_schema`` response format for the chat completions API: built once per
    agent and shared by every run, so it is read, never changed (a fresh copy per decision,
    parsed from JSON, was about 2 % of a worker's CPU)."""
    return strict_schema(step_model(agent).model_json_schema())


def parse_step(agent: Agent, raw: str) -> Decision:
    """Validate the model's JSON; anything else is the model's fault, reported compactly."""
    try:
        root = step_model(agent).model_validate_json(raw)
    except ValidationError as exc:
        raise LLMFailed("invalid_output", compact_validation_error(exc)) from None
    step = cast(BaseModel, root.step)  # type: ignore[attr-defined]
    arguments = step.model_dump(mode="json", exclude={"intent"})
    return Decision(intent=cast(str, step.intent), arguments=arguments)  # type: ignore[attr-defined]


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a pydantic JSON schema into the subset OpenAI strict mode accepts.

    Every object closes (``additionalProperties: false``) and lists all its properties as
    required; ``oneOf`` becomes ``anyOf``; ``discriminator``, ``default`` and ``title`` go
    (strict mode refuses the first two, the last only costs tokens).
    """
    return cast(dict[str, Any], _strict(schema))


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("discriminator", "default", "title"):
            continue
        if key == "properties":
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key == "oneOf":
            out["anyOf"] = _strict(value)
        else:
            out[key] = _strict(value)
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out
