"""An MCP tool's input schema made to fit strict mode, or refused by name; calls checked
against the server's own schema (agent/mcp_schema.py). Table-driven: pure functions."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent.errors import ToolFailed, ToolRefused
from agent.mcp_config import McpServerConfig, McpToolConfig
from agent.mcp_schema import arguments_model, strict_input_schema
from agent.mcp_tools import RemoteTool, build_tool, hints
from agent.steps import strict_schema


def obj(properties: dict[str, Any], required: list[str] | None = None, **more: Any) -> Any:
    return {"type": "object", "properties": properties, "required": required or [], **more}


STR = {"type": "string"}
NULL = {"type": "null"}

FITS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "optional becomes required and nullable",
        obj({"q": STR, "n": {"type": "integer", "description": "How many."}}, ["q"]),
        obj(
            {"q": STR, "n": {"anyOf": [{"type": "integer"}, NULL], "description": "How many."}},
            ["q", "n"],
            additionalProperties=False,
        ),
    ),
    (
        "pydantic's Optional stays as it is; titles and defaults go",
        obj({"n": {"anyOf": [{"type": "integer"}, NULL], "default": None, "title": "N"}}),
        obj({"n": {"anyOf": [{"type": "integer"}, NULL]}}, ["n"], additionalProperties=False),
    ),
    (
        "narrowing keywords are dropped (the call is still checked against them)",
        obj({"s": {"type": "string", "minLength": 3, "format": "uri"}}, ["s"]),
        obj({"s": STR}, ["s"], additionalProperties=False),
    ),
    (
        "kept: pattern, enum, known formats, numeric bounds, item counts",
        obj(
            {
                "tag": {"type": "string", "pattern": "^v"},
                "env": {"enum": ["a", "b"]},
                "at": {"type": "string", "format": "date-time"},
                "k": {"type": "integer", "minimum": 1},
                "xs": {"type": "array", "items": STR, "maxItems": 3},
            },
            ["tag", "env", "at", "k", "xs"],
        ),
        obj(
            {
                "tag": {"type": "string", "pattern": "^v"},
                "env": {"enum": ["a", "b"]},
                "at": {"type": "string", "format": "date-time"},
                "k": {"type": "integer", "minimum": 1},
                "xs": {"type": "array", "items": STR, "maxItems": 3},
            },
            ["tag", "env", "at", "k", "xs"],
            additionalProperties=False,
        ),
    ),
    (
        "nested objects close too; local $ref is inlined; oneOf becomes anyOf",
        {
            "type": "object",
            "$defs": {"Where": obj({"region": STR}, ["region"])},
            "properties": {
                "where": {"$ref": "#/$defs/Where"},
                "pick": {"oneOf": [STR, {"type": "integer"}]},
            },
            "required": ["where", "pick"],
        },
        obj(
            {
                "where": obj({"region": STR}, ["region"], additionalProperties=False),
                "pick": {"anyOf": [STR, {"type": "integer"}]},
            },
            ["where", "pick"],
            additionalProperties=False,
        ),
    ),
    ("no arguments at all", obj({}), obj({}, [], additionalProperties=False)),
]


@pytest.mark.parametrize(("why", "schema", "strict"), FITS, ids=[f[0] for f in FITS])
def test_schemas_that_fit(why: str, schema: dict[str, Any], strict: dict[str, Any]) -> None:
    assert strict_input_schema("t", schema) == strict


REFUSED: list[tuple[dict[str, Any], str]] = [
    (obj({"m": {"type": "object", "additionalProperties": STR}}), "'additionalProperties' at m"),
    (obj({"m": {"type": "object"}}), "'properties' at m: an object without properties"),
    (obj({"a": {"allOf": [STR]}}), "'allOf' at a"),
    (obj({"a": {"not": STR}}), "'not' at a"),
    (obj({"a": {}}), "'{}' at a: accepts any value"),
    (obj({"a": {"type": "array"}}), "'items' at a: an array must say"),
    (obj({"a": STR}, patternProperties={"^x": STR}), "'patternProperties'"),
    (
        {"type": "object", "$defs": {"N": obj({"next": {"$ref": "#/$defs/N"}})},
         "properties": {"n": {"$ref": "#/$defs/N"}}},
        "'$ref' at n.next: recursive reference to N",
    ),
    (obj({"a": {"$ref": "https://example.com/s.json"}}), "'$ref' at a: only local"),
    (obj({"intent": STR}), "argument name 'intent'"),
    (obj({"max-results": STR}), "argument name 'max-results'"),
    ({"type": "array", "items": STR}, "not an object"),
    (obj({"a": {"type": "strin"}}), "not valid JSON Schema"),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "said"), REFUSED, ids=[r[1] for r in REFUSED])
def test_schemas_strict_mode_cannot_take_refuse_the_tool_by_name(
    schema: dict[str, Any], said: str
) -> None:
    with pytest.raises(ToolRefused) as caught:
        strict_input_schema("lookup", schema)
    assert str(caught.value).startswith("MCP tool lookup is not offered: ")
    assert said in str(caught.value)


SEARCH = obj(
    {"query": {"type": "string", "minLength": 2}, "limit": {"type": "integer", "maximum": 10}},
    ["query"],
)


def _model() -> Any:
    return arguments_model("search", "Search.", SEARCH, strict_input_schema("search", SEARCH))


@pytest.mark.parametrize(
    ("arguments", "sent"),
    [
        ({"query": "db", "limit": None}, {"query": "db"}),  # null for optional: left out
        ({"query": "db", "limit": 3}, {"query": "db", "limit": 3}),
        ({"query": "db"}, {"query": "db"}),
    ],
)
def test_calls_send_what_the_server_expects(arguments: dict[str, Any], sent: Any) -> None:
    assert _model().model_validate(arguments).call_arguments() == sent


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"query": "d", "limit": None}, "query: 'd' is too short"),  # dropped from strict
        ({"query": "db", "limit": 11}, "limit: 11 is greater than the maximum of 10"),
        ({"limit": 1}, "arguments: 'query' is a required property"),
        ({"query": "db", "other": 1}, "other"),
    ],
)
def test_calls_are_checked_against_the_servers_schema(arguments: dict[str, Any], said: str) -> None:
    tool = build_tool(
        "search",
        "ops",
        McpServerConfig(command=["x"], read_only=["search"]),
        client=None,  # type: ignore[arg-type]  # never called: validation comes first
        remote=RemoteTool(name="search", input_schema=SEARCH),
    )
    with pytest.raises(ToolFailed) as caught:
        tool.validate(arguments)
    assert said in caught.value.error


def test_the_step_variant_is_strict_mode_clean() -> None:
    model = _model()
    schema = strict_schema(model.model_json_schema())
    assert schema["required"] == ["query", "limit"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["limit"] == {"anyOf": [{"type": "integer", "maximum": 10}, NULL]}


@pytest.mark.parametrize(
    ("hint", "said"),
    [
        ({}, "MCP server ops gives no hints about this tool."),
        (
            {"read_only_hint": True},
            "MCP server ops says: read-only (hints from the server, not verified).",
        ),
        (
            {"read_only_hint": False, "destructive_hint": True, "open_world_hint": True},
            "MCP server ops says: not read-only, destructive, reaches outside systems "
            "(hints from the server, not verified).",
        ),
    ],
)
def test_hints_are_worded_as_hints(hint: dict[str, Any], said: str) -> None:
    assert hints("ops", RemoteTool(name="t", input_schema=obj({}), **hint)) == said


@pytest.mark.parametrize(
    ("patterns", "name", "read_only"),
    [
        (["search", "get_*"], "get_deploys", True),
        (["search", "get_*"], "search", True),
        (["search", "get_*"], "rollback", False),
        (["get_*"], "GET_x", False),  # case-sensitive: a near miss needs approval
        ([], "search", False),
    ],
)
def test_read_only_is_the_configurations_word(
    patterns: list[str], name: str, read_only: bool
) -> None:
    config = McpServerConfig(command=["x"], read_only=patterns)
    assert config.is_read_only(name) is read_only
    tool = build_tool(name, "ops", config, None, RemoteTool(name=name, input_schema=obj({})))  # type: ignore[arg-type]
    assert tool.needs_approval is not read_only
    assert tool.side_effects is not read_only


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ({}, "give a command (stdio) or a url"),
        ({"command": ["x"], "url": "http://h/mcp"}, "give a command (stdio) or a url"),
        ({"command": []}, "empty command"),
        ({"url": "ftp://h"}, "url must be http:// or https://"),
        ({"command": ["x"], "headers": {"a": "b"}}, "headers are for a url server"),
        ({"command": ["x"], "tools": {"t": {"approvers": ["slak:U1"]}}}, "unknown channel"),
        (
            {"command": ["x"], "tools": {"t": {"approval": {"route": [{"notify": ["rest:bob"]}]}}}},
            "route address rest:bob is not one of the approvers",
        ),
        ({"command": ["x"], "allowed_tools": []}, "at least 1 item"),
        (
            {"command": ["x"], "allowed_tools": ["get_*"], "tools": {"restart": {}}},
            "tools.restart is not offered: allowed_tools does not match it",
        ),
    ],
)
def test_bad_server_configuration_is_refused(raw: dict[str, Any], said: str) -> None:
    with pytest.raises(ValidationError) as caught:
        McpServerConfig.model_validate(raw)
    assert said in str(caught.value)


@pytest.mark.parametrize(
    ("allowed", "name", "offered"),
    [
        (None, "rollback", True),  # unset: every tool the server lists
        (["recent_errors", "get_*"], "get_deploys", True),
        (["recent_errors", "get_*"], "rollback", False),
        (["get_*"], "GET_deploys", False),  # case-sensitive, like read_only
    ],
)
def test_allowed_tools_decides_what_the_agent_is_offered(
    allowed: list[str] | None, name: str, offered: bool
) -> None:
    assert McpServerConfig(command=["x"], allowed_tools=allowed).offers(name) is offered


def test_a_route_may_ask_in_a_slack_channel_that_is_no_approver() -> None:
    route = {"route": [{"notify": ["slack:C0ONCALL"]}, {"notify": ["sms:+15551234567"]}]}
    raw = {"approvers": ["slack:U0ONCALL", "sms:+15551234567"], "approval": route}
    config = McpServerConfig.model_validate({"command": ["x"], "tools": {"rollback": raw}})
    assert [str(a) for a in config.tools["rollback"].asked()] == [
        "slack:C0ONCALL",
        "sms:+15551234567",
    ]
    with pytest.raises(ValidationError, match="route address slack:U0OTHER is not one of"):
        McpToolConfig.model_validate(
            {**raw, "approval": {"route": [{"notify": ["slack:U0OTHER"]}]}}
        )
