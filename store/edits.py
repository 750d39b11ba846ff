"""What an approval may carry beside "yes": an edit of the call, a grant. Checked against the
request as it was asked (its ``editable`` and ``grants``) before the approval is stored.

Whether the edited values are valid for the tool is the channel's check (it knows the tool's
model); which fields may change, and which grants exist, is the request's, checked here so
that no channel can store more than the policy allows.
"""

from __future__ import annotations

from model.events import Approved, arguments_hash
from model.records import RequestRecord
from store.errors import GrantNotOffered, NotEditable


def changed(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """The argument names whose values differ (added or removed ones too), sorted."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def checked(record: RequestRecord, approval: Approved) -> Approved:
    """The approval as stored: an edit that changes nothing is a plain approval; an edit's
    ``arguments_hash`` is the edited call's. Raises NotEditable, GrantNotOffered."""
    if approval.grant is not None and approval.grant not in record.grants:
        raise GrantNotOffered(record.request_id, approval.grant)
    if approval.arguments is None:
        return approval
    fields = changed(record.arguments or {}, approval.arguments)
    if not fields:
        return approval.model_copy(update={"arguments": None})
    refused = [f for f in fields if f not in record.editable]
    if refused:
        raise NotEditable(record.request_id, refused, record.editable)
    return approval.model_copy(update={"arguments_hash": arguments_hash(approval.arguments)})


def special(approval: Approved) -> bool:
    """An edit or a grant: accepted only from the approval that completes the quorum."""
    return approval.arguments is not None or approval.grant is not None
