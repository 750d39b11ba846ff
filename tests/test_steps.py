"""The NextStep schema the model answers in: pinned, and within OpenAI strict mode's rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.config import Registry
from agent.errors import LLMFailed
from agent.steps import parse_step, response_schema

GOLDEN = Path(__file__).parent / "golden" / "deploybot_next_step.schema.json"


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


def test_schema_is_pinned(registry: Registry) -> None:
    schema = response_schema(registry.agents["deploybot"])
    # To accept a deliberate change: regenerate the file and review the diff.
    assert schema == json.loads(GOLDEN.read_text())


def test_schema_obeys_strict_mode(registry: Registry) -> None:
    schema = response_schema(registry.agents["deploybot"])
    assert schema["type"] == "object"
    assert "anyOf" not in schema
    assert "anyOf" in schema["properties"]["step"]
    for node in _walk(schema):
        assert "oneOf" not in node
        assert "discriminator" not in node
        assert "default" not in node
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert node["required"] == list(node.get("properties", {}))


def test_every_tool_and_builtin_is_an_intent(registry: Registry) -> None:
    schema = response_schema(registry.agents["deploybot"])
    defs = schema["$defs"]
    intents = set()
    for ref in schema["properties"]["step"]["anyOf"]:
        variant = defs[ref["$ref"].rsplit("/", 1)[1]]
        intents.add(variant["properties"]["intent"]["const"])
    assert intents == {
        "list_tags",
        "deploy",
        "rollback",
        "request_more_information",
        "done_for_now",
    }


def test_parse_valid_step(registry: Registry) -> None:
    agent = registry.agents["deploybot"]
    raw = json.dumps({"step": {"intent": "deploy", "tag": "v1.2.3", "env": "staging"}})
    decision = parse_step(agent, raw)
    assert decision.intent == "deploy"
    assert decision.arguments == {"tag": "v1.2.3", "env": "staging"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("not json", "Invalid JSON"),
        ('{"step": {"intent": "format_disk"}}', "does not match any of the expected tags"),
        ('{"step": {"intent": "deploy", "tag": "v1", "env": "staging"}}', "step.deploy.tag"),
        ('{"step": {"intent": "deploy", "tag": "v1.2.3", "env": "moon"}}', "step.deploy.env"),
        ('{"step": {"intent": "done_for_now", "message": "x", "extra": 1}}', "extra"),
    ],
)
def test_invalid_output_is_the_models_fault(registry: Registry, raw: str, expected: str) -> None:
    with pytest.raises(LLMFailed) as caught:
        parse_step(registry.agents["deploybot"], raw)
    assert caught.value.kind == "invalid_output"
    assert expected in caught.value.error
    assert "http" not in caught.value.error  # no documentation URLs in the context
