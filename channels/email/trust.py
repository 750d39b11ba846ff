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

_COMMENT = re.compile(r"\([^()]*\)")
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
    for header in results:
        clean = _COMMENT.sub(" ", header)
        authserv, *resinfo = [p.strip() for p in clean.split(";")]
        if (authserv.split() or [""])[0].lower() not in trusted_ids:
            continue
        for info in resinfo:
            method, result, props = _resinfo(info)
            if result != "pass":
                continue
            if method == "dmarc" and props.get("header.from") == domain:
                return True
            signer = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if method == "dkim" and signer and (domain == signer or domain.endswith("." + signer)):
                return True
        return False
    return False


def _resinfo(info: str) -> tuple[str, str, dict[str, str]]:
    words = info.split()
    if not words or "=" not in words[0]:
        return "", "", {}
    method, _, result = words[0].partition("=")
    props = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if sep:
            props[key.lower()] = value.strip('"').lower()
    return method.lower(), result.lower(), props


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
