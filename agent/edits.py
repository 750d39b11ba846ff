"""Edit-then-approve on the agent's side: which call an approval approves, whether an edit
stays inside the request's ``editable``, and how the model hears that a human changed it.

Pure functions of the request and its approval (the reducer's and the run loop's).
"""

from __future__ import annotations

from typing import Any

from model.events import ApprovalRequest, Approved, JsonObject, arguments_hash
from store.edits import changed


def approved_call(request: ApprovalRequest, approval: Approved) -> JsonObject:
    """The arguments that run: the approver's edit, else the call as asked."""
    return approval.arguments if approval.arguments is not None else request.arguments


def binds(request: ApprovalRequest, approval: Approved) -> bool:
    """Does this approval approve this request's call (or an allowed edit of it)?

    The store checked it before storing; checked again here because the log is what runs.
    """
    if approval.arguments is None:
        return approval.arguments_hash in (None, arguments_hash(request.arguments))
    if approval.arguments_hash != arguments_hash(approval.arguments):
        return False
    return all(f in request.editable for f in changed(request.arguments, approval.arguments))


def edit_note(request: ApprovalRequest, approval: Approved) -> str | None:
    """What the model reads before the result of an edited call: who changed what."""
    if approval.arguments is None:
        return None
    before, after = request.arguments, approval.arguments
    fields = changed(before, after)
    if not fields:
        return None
    what = ", ".join(f"{f}={_shown(after, f)} (you asked {_shown(before, f)})" for f in fields)
    return f"{approval.responder} changed the call before approving it: {what}. It ran as changed."


def _shown(arguments: JsonObject, field: str) -> str:
    value: Any = arguments.get(field)
    return "nothing" if field not in arguments else repr(value)
