"""Edit-then-approve and grants in Slack: the extra buttons on an approval message, the edit
modal (one input per editable argument, prefilled), and its submission read back.

Pure Block Kit and payload parsing; the listener is channels/slack/decisions.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from channels.slack.markup import escape
from channels.slack.payloads import APPROVE_THREAD, EDIT, EDIT_VIEW, MAX_TEXT, MessageRef

INPUT = "value"
"""The action id of every input of the edit modal (the block id names the argument)."""
_BLOCK = "edit:"


def block_of(field: str) -> str:
    """The edit modal's block id for one argument (where an error on it is shown)."""
    return _BLOCK + field


def buttons(
    request_id: str, editable: Sequence[str], grants: Sequence[str]
) -> list[dict[str, Any]]:
    """The buttons an approval offers beside Approve and Reject, per its policy."""
    out: list[dict[str, Any]] = []
    if "thread" in grants:
        out.append(_button(APPROVE_THREAD, "Approve for this thread", request_id))
    if editable:
        out.append(_button(EDIT, "Edit", request_id))
    return out


def _button(action_id: str, text: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": request_id,
    }


def _prefill(value: Any) -> str:
    """A value as the input shows it: strings as typed, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def modal(
    ref: MessageRef, tool: str, arguments: Mapping[str, Any], editable: Sequence[str]
) -> dict[str, Any]:
    """The edit modal; the approval message's whereabouts ride in private_metadata."""
    inputs: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": block_of(field),
            "label": {"type": "plain_text", "text": field[:2000]},
            "element": {
                "type": "plain_text_input",
                "action_id": INPUT,
                "initial_value": _prefill(arguments.get(field, ""))[:3000],
                "max_length": 3000,
            },
        }
        for field in editable
    ]
    return {
        "type": "modal",
        "callback_id": EDIT_VIEW,
        "private_metadata": ref.model_dump_json(),
        "title": {"type": "plain_text", "text": "Edit, then approve"},
        "submit": {"type": "plain_text", "text": "Approve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"Change `{escape(tool)}` before approving it; the edited call runs.",
                },
            },
            *inputs,
        ],
    }


class EditSubmission(BaseModel):
    """The edit modal, submitted: the values typed, by argument."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: MessageRef
    user: str
    values: dict[str, str]


def submission(body: dict[str, Any]) -> EditSubmission | None:
    """A view_submission of the edit modal, or None if it is malformed."""
    view = body.get("view") or {}
    user = (body.get("user") or {}).get("id")
    try:
        ref = MessageRef.model_validate(json.loads(view.get("private_metadata") or ""))
        state = view["state"]["values"]
        values = {
            block[len(_BLOCK) :]: str(inputs[INPUT].get("value") or "")[:MAX_TEXT]
            for block, inputs in state.items()
            if block.startswith(_BLOCK)
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(user, str) or not values:
        return None
    return EditSubmission(ref=ref, user=user, values=values)


def changes(arguments: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """The typed values as arguments: a string argument takes the text as typed; any other
    takes it as JSON when it parses (``3``, ``true``, ``["a"]``), else as text (the tool's
    model then says what is wrong)."""
    out: dict[str, Any] = {}
    for field, text in values.items():
        if isinstance(arguments.get(field), str):
            out[field] = text
            continue
        try:
            out[field] = json.loads(text)
        except ValueError:
            out[field] = text
    return out


def error_block(error: str, fields: Sequence[str]) -> str:
    """The block to show a validation message on: the argument it names, else the first."""
    for field in fields:
        if error.startswith(field):
            return block_of(field)
    return block_of(fields[0])
