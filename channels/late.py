"""What a late or stray answer hears, on whichever channel it came from: what became of the
request ("already approved by release-manager at 14:02 UTC", "withdrawn", "expired"). It
decides nothing and starts no conversation."""

from __future__ import annotations

from model.events import Approved, Rejected
from model.records import RequestView, call_text


def late_reply(view: RequestView) -> str:
    """One line for an answer to a request that is no longer pending."""
    r = view.request
    what = call_text(r.tool, r.arguments or {}) if r.tool else r.text[:60]
    answer = view.response
    if view.status == "withdrawn":
        return f"{what} is no longer pending: it was withdrawn (the request changed)."
    if view.status == "expired":
        return f"{what} is no longer pending: it expired before anyone decided."
    if isinstance(answer, Approved | Rejected):
        how = "approved" if isinstance(answer, Approved) else "rejected"
        who = answer.person if isinstance(answer, Approved) and answer.person else answer.responder
        return f"{what} was already {how} by {who} at {answer.at:%H:%M} UTC. Nothing was changed."
    return f"{what} was already decided. Nothing was changed."
