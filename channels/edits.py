"""Edit-then-approve at the channel edge: an approver's changes, checked and validated.

Every channel that offers an edit (REST, the console, the Slack modal) turns the changes into
the whole edited call here: only the request's ``editable`` fields may change (NotEditable),
and the result must pass the tool's own pydantic model (ToolFailed, with its message). The
store checks ``editable`` again when the approval is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.config import Registry
from agent.errors import ToolFailed
from model.events import JsonObject
from model.records import RequestRecord
from store.errors import NotEditable
from store.port import ChannelPort


async def edited_call(
    port: ChannelPort, registry: Registry, record: RequestRecord, changes: Mapping[str, Any]
) -> JsonObject:
    """The whole call with ``changes`` applied, as the tool's model reads it.

    A field sent with its unchanged value is not an edit (a client may send the whole call).
    Raises NotEditable (a field the policy keeps fixed) and ToolFailed (a value the tool's
    model refuses).
    """
    original = record.arguments or {}
    fixed = sorted(
        k for k, v in changes.items() if k not in record.editable and original.get(k) != v
    )
    if fixed:
        raise NotEditable(record.request_id, fixed, record.editable)
    meta = await port.meta(record.thread_id)
    agent = registry.agents.get(meta.agent)
    tool = agent.tools.get(record.tool or "") if agent else None
    if tool is None:
        raise ToolFailed(
            record.tool or "?", "the tool is no longer configured: cannot check the edit"
        )
    return tool.validate({**original, **changes}).model_dump(mode="json")
