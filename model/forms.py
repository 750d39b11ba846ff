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
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel
from pydantic_core import SchemaSerializer, core_schema

_ZERO = timedelta(0)


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


def stored_stamp(at: datetime) -> int | str:
    """A timestamp's stored form: milliseconds since the epoch where that says all of it (a
    whole millisecond, in UTC: what model.events.stamp gives), else ISO 8601 as before.
    Both read back as the same datetime (pydantic takes a large number as milliseconds)."""
    if at.microsecond % 1000 == 0 and at.utcoffset() == _ZERO:
        # Whole seconds from the float are exact (far from a rounding edge): the C path.
        return int(at.timestamp()) * 1000 + at.microsecond // 1000
    return at.isoformat().replace("+00:00", "Z")


def stored_serializer(
    cls: type[BaseModel], always: tuple[str, ...], stamps: tuple[str, ...] = ()
) -> SchemaSerializer:
    """``cls``'s serializer, under which ``exclude_defaults`` never leaves out ``always``, and
    the datetimes ``stamps`` are written by ``stored_stamp``."""
    schema = copy.deepcopy(cls.__pydantic_core_schema__)
    fields = _model_fields(cast(dict[str, Any], schema))
    for name in always:
        field = fields[name]
        if field["schema"].get("type") == "default":
            field["schema"] = field["schema"]["schema"]
    for name in stamps:
        inner = fields[name]["schema"]
        while inner.get("type") == "default":
            inner = inner["schema"]
        inner["serialization"] = core_schema.plain_serializer_function_ser_schema(
            stored_stamp, when_used="json"
        )
    return SchemaSerializer(schema, schema.get("config"))
