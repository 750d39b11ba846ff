"""Who may write to an agent, and whose mail may carry an approval.

Senders are allowed per agent (``email_senders`` in the agent's settings: addresses, or
domains written ``@example.com``). An approval by mail needs more than a From line, which
anyone can forge: the receiving edge must have checked the mail (DKIM or DMARC pass for the
From domain, in an Authentication-Results header added by a host we trust), the reply must
reach us through the signed reply address of that very request, and the sender must be one
of the tool's approvers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import authres

# DKIM and DMARC result classes (RFC 8601 core plus RFC 7489); methods it does not know are
# read generically, so a header naming them still parses.
_FEATURES = authres.all_features()
# The authserv-id of a header authres cannot read: its first word, after any comments.
_LEADING_ID = re.compile(r"^\s*(?:\([^()]*\)\s*)*([^\s;()]+)")
_DECISION = re.compile(r"^\s*(approve|approved|reject|rejected)\b[\s:,.;!-]*(.*)$", re.I | re.S)


def patterns(settings: Mapping[str, Any], key: str) -> list[str] | None:
    """A list setting of an agent, lower case; None when the agent does not set it."""
    value = settings.get(key)
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    return [str(v).strip().lower() for v in items if str(v).strip()]


def address_matches(address: str, allowed: Iterable[str]) -> bool:
    """``a@b.c`` matches ``a@b.c``, ``@b.c`` and ``b.c``."""
    address = address.lower()
    domain = address.rpartition("@")[2]
    for pattern in allowed:
        if pattern == "*" or pattern == address:
            return True
        if pattern.lstrip("@") == domain and "@" not in pattern.lstrip("@"):
            return True
    return False


def authenticated(results: list[str], sender: str, trusted: Iterable[str]) -> bool:
    """Did a trusted receiving host see DKIM or DMARC pass for the sender's domain?

    Only the topmost header from a trusted host counts: that host adds its own on top, and a
    header of the same name further down may have come with the message from anyone.
    """
    trusted_ids = {t.lower() for t in trusted}
    domain = sender.rpartition("@")[2].lower()
    if not domain or not trusted_ids:
        return False
    for value in results:
        header = _parse(value)
        if header is None:
            # Unreadable: if a trusted host wrote it, we cannot know what it said, and a header
            # further down is no substitute for it (that one may be the sender's forgery).
            if _leading_id(value) in trusted_ids:
                return False
            continue
        if header.authserv_id not in trusted_ids:
            continue
        return any(_vouches(result, domain) for result in header.results)
    return False


def _parse(value: str) -> Any:
    """The header as authres reads it (RFC 8601: comments, quoted strings, versions), or None."""
    try:
        return _FEATURES.parse_value(" ".join(value.split()))
    except authres.AuthResError:
        return None


def _leading_id(value: str) -> str:
    found = _LEADING_ID.match(value)
    return found.group(1).lower() if found else ""


def _vouches(result: Any, domain: str) -> bool:
    """A pass of DMARC for this From domain, or of DKIM signed by it (or a parent of it)."""
    if str(result.result or "").lower() != "pass":
        return False
    if result.method == "dmarc":
        return _value(result.header_from) == domain
    if result.method == "dkim":
        signer = _value(result.header_d) or _value(result.header_i).rpartition("@")[2]
        return bool(signer) and (domain == signer or domain.endswith("." + signer))
    return False


def _value(prop: Any) -> str:
    return str(prop or "").strip('"').lower()


def read_decision(text: str) -> tuple[Literal["approve", "reject"], str | None] | None:
    """The first line decides: ``APPROVE`` or ``REJECT <reason>`` (the reason may follow below)."""
    found = _DECISION.match(text.strip())
    if found is None:
        return None
    decision: Literal["approve", "reject"] = (
        "approve" if found.group(1).lower().startswith("approve") else "reject"
    )
    reason = found.group(2).strip() or None
    return decision, reason
