"""An MCP tool's input schema, made to fit OpenAI strict mode, and the model that checks a
call against the server's own schema.

Two schemas per tool: the *strict* one goes into the agent's step schema (every object
closed, every property required, optional ones nullable, ``$ref`` inlined, ``oneOf`` as
``anyOf``); the server's *own* one checks each call (jsonschema, the reference validator of
the JSON Schema spec), after the nulls strict mode made the model write for optional
arguments are taken out again. Keywords that only narrow values (``minLength``,
``uniqueItems``...) are dropped from the strict schema: strict mode does not take them, and
the call is still checked against them. Keywords that change the shape in ways strict mode
cannot say (``allOf``, ``patternProperties``, a free-form object, a recursive ``$ref``...)
refuse the tool, with a message naming the tool, the keyword and where it is.
"""

from __future__ import annotations

import keyword
import re
from typing import Any, ClassVar, cast

from jsonschema import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from agent.errors import ToolRefused

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PROPERTY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# Taken as they are: the keywords strict mode documents.
_KEPT = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "const",
        "anyOf", "description", "pattern", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
    }
)  # fmt: skip
# Formats strict mode knows; another format is dropped (the server's schema still has it).
_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Annotations and narrowing keywords: dropped here, still checked on every call.
_DROPPED = frozenset(
    {
        "title", "default", "examples", "$schema", "$id", "$comment", "$anchor", "minLength",
        "maxLength", "uniqueItems", "minProperties", "maxProperties", "readOnly", "writeOnly",
        "deprecated", "contentMediaType", "contentEncoding", "$defs", "definitions",
    }
)  # fmt: skip
# The step schema flattens a tool's arguments beside its ``intent`` tag, in a pydantic model.
_RESERVED = frozenset({"intent", *dir(BaseModel)})


def strict_input_schema(tool: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The strict-mode form of ``schema`` (a tool's ``inputSchema``), or ToolRefused."""
    if schema.get("type") != "object":
        raise ToolRefused(tool, "its input schema is not an object (type: object)")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ToolRefused(
            tool, f"its input schema is not valid JSON Schema: {exc.message}"
        ) from None
    for name in schema.get("properties", {}):
        if not PROPERTY.match(name) or keyword.iskeyword(name) or name in _RESERVED:
            raise ToolRefused(tool, f"argument name {name!r} cannot be offered (reserved or not "
                              "a plain identifier)")  # fmt: skip
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return cast(dict[str, Any], _Converter(tool, defs).node(schema, "", ()))


class _Converter:
    def __init__(self, tool: str, defs: dict[str, Any]) -> None:
        self.tool = tool
        self.defs = defs

    def refuse(self, keyword_: str, where: str, why: str = "strict mode cannot express it") -> None:
        at = f" at {where}" if where else ""
        raise ToolRefused(self.tool, f"keyword {keyword_!r}{at}: {why}")

    def node(self, schema: Any, where: str, seen: tuple[str, ...]) -> Any:
        if not isinstance(schema, dict) or not schema:
            self.refuse("{}" if schema in ({}, True) else repr(schema), where, "accepts any value")
        if "$ref" in schema:
            return self.ref(schema, where, seen)
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "oneOf":  # exclusive alternatives: as anyOf, the call check keeps oneOf
                key = "anyOf"
            if key == "format":
                if value in _FORMATS:
                    out[key] = value
            elif key in _DROPPED or key.startswith("x-"):
                continue
            elif key not in _KEPT and key != "anyOf":
                self.refuse(key, where)
            elif key == "properties":
                out[key] = {n: self.node(s, _at(where, n), seen) for n, s in value.items()}
            elif key == "items":
                if not isinstance(value, dict):
                    self.refuse(key, where, "only one schema for every item is supported")
                out[key] = self.node(value, _at(where, "items"), seen)
            elif key == "anyOf":
                out[key] = [
                    self.node(s, _at(where, f"anyOf.{i}"), seen) for i, s in enumerate(value)
                ]
            elif key == "additionalProperties":
                if value is not False:
                    self.refuse(key, where, "an object with free-form keys cannot be offered")
            else:
                out[key] = value
        return self.close(out, schema, where)

    def close(self, out: dict[str, Any], schema: dict[str, Any], where: str) -> dict[str, Any]:
        types = out.get("type")
        is_object = types == "object" or (isinstance(types, list) and "object" in types)
        if is_object or "properties" in out:
            if not out.get("properties") and where:  # at the top: a tool with no arguments
                self.refuse("properties", where, "an object without properties is free-form")
            out.setdefault("properties", {})
            required = set(schema.get("required", []))
            out["properties"] = {
                n: s if n in required else _nullable(s) for n, s in out["properties"].items()
            }
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        is_array = types == "array" or (isinstance(types, list) and "array" in types)
        if is_array and "items" not in out:
            self.refuse("items", where, "an array must say what its items are")
        return out

    def ref(self, schema: dict[str, Any], where: str, seen: tuple[str, ...]) -> Any:
        target = str(schema["$ref"])
        name = target.rsplit("/", 1)[-1]
        if not isinstance(target, str) or target not in (
            f"#/$defs/{name}",
            f"#/definitions/{name}",
        ):
            self.refuse("$ref", where, f"only local #/$defs references are supported ({target})")
        if name in seen:
            self.refuse("$ref", where, f"recursive reference to {name}")
        if name not in self.defs:
            self.refuse("$ref", where, f"{target} is not defined")
        resolved = self.node(self.defs[name], where, (*seen, name))
        if "description" in schema:
            resolved = {**resolved, "description": schema["description"]}
        return resolved


def _at(where: str, part: str) -> str:
    return f"{where}.{part}" if where else part


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional property, as strict mode wants it: required, and null when not given."""
    types = schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return schema
    if any(branch.get("type") == "null" for branch in schema.get("anyOf", [])):
        return schema  # Optional[...] as pydantic writes it: already takes null
    inner = {k: v for k, v in schema.items() if k != "description"}
    out: dict[str, Any] = {"anyOf": [inner, {"type": "null"}]}
    if "description" in schema:
        out["description"] = schema["description"]
    return out


class McpArguments(BaseModel):
    """A call's arguments to an MCP tool, checked against the server's own input schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    server_schema: ClassVar[dict[str, Any]] = {}
    optional: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _server_schema(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("the arguments must be an object")
        sent = cls._without_absent(data)
        validator = validator_for(cls.server_schema)(cls.server_schema)
        problems = sorted(validator.iter_errors(sent), key=lambda e: list(e.absolute_path))
        if problems:
            raise ValueError(
                "; ".join(
                    f"{'.'.join(str(p) for p in e.absolute_path) or 'arguments'}: {e.message[:200]}"
                    for e in problems[:5]
                )
            )
        return data

    @classmethod
    def _without_absent(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if not (v is None and k in cls.optional)}

    def call_arguments(self) -> dict[str, Any]:
        """What is sent to the server: optional arguments the model left null are left out."""
        return self._without_absent(self.model_dump(mode="json"))


def arguments_model(
    name: str, description: str, schema: dict[str, Any], strict: dict[str, Any]
) -> type[McpArguments]:
    """A pydantic model whose fields carry the strict schema (for the step schema) and whose
    validation is the server's schema (for the call)."""
    required = set(schema.get("required", []))
    fields: dict[str, Any] = {}
    for prop, prop_schema in strict["properties"].items():
        extra = cast(dict[str, Any], prop_schema)
        if prop in required:
            fields[prop] = (Any, Field(json_schema_extra=extra))
        else:
            fields[prop] = (Any, Field(default=None, json_schema_extra=extra))
    model = create_model(
        f"{name.title().replace('_', '').replace('-', '')}Arguments",
        __base__=McpArguments,
        __doc__=description,
        **fields,
    )
    model.server_schema = schema
    model.optional = frozenset(set(strict["properties"]) - required)
    return model
