"""Serializers of stored forms: a model's JSON without the fields that hold their defaults.

A stored value is kept as long as its thread, and most of what a record or an event could
say is its default (an approval's empty notify list, its quorum of one): readers fill those
in, so the stored form leaves them out. ``exclude_defaults`` alone would also leave out the
``type`` tag and, should the clock not have moved, a timestamp made by a default factory; a
stored serializer is the model's own with those fields' defaults taken away, so they are
always written. Built once per model from its core schema: the work stays in pydantic-core.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from pydantic import BaseModel
from pydantic_core import SchemaSerializer


class _Form:
    """The class a stored serializer's schema names: pydantic-core would otherwise reuse the
    model's own serializer for a schema naming the model (the one being changed here)."""


def _model_fields(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``model-fields`` schema inside a model's core schema (under any wrappers); each
    ``model`` schema on the way is renamed to ``_Form``."""
    while schema.get("type") != "model-fields":
        if schema.get("type") == "model":
            schema["cls"] = _Form
        schema = schema["schema"]
    fields: dict[str, Any] = schema["fields"]
    return fields


def stored_serializer(cls: type[BaseModel], always: tuple[str, ...]) -> SchemaSerializer:
    """``cls``'s serializer, under which ``exclude_defaults`` never leaves out ``always``."""
    schema = copy.deepcopy(cls.__pydantic_core_schema__)
    fields = _model_fields(cast(dict[str, Any], schema))
    for name in always:
        if name not in fields:
            continue
        field = fields[name]
        if field["schema"].get("type") == "default":
            field["schema"] = field["schema"]["schema"]
    return SchemaSerializer(schema, schema.get("config"))
