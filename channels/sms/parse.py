"""Twilio's webhook payloads as typed values, and what a text means: pure functions only."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_BODY = 1600
"""Twilio's own limit on a message body (characters)."""

# Twilio's default keywords on long codes; only a single-word message triggers them.
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "UNSTOP", "YES"})
HELP = frozenset({"HELP", "INFO"})
OPTED_OUT_ERROR = 21610
"""Twilio's error code: the recipient has replied STOP to this number."""

_DECISION = re.compile(
    r"^\s*(?P<verb>yes|y|approve|no|n|reject)\b(?:\s*#?(?P<code>\d{4})\b)?[\s,.:;!-]*(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_APPROVE = frozenset({"YES", "Y", "APPROVE"})
# ``YES ALL``, ``YES 4821 ALL``, ``YES ALL 4821``: approve for the rest of the thread.
_ALL = re.compile(r"^all\b(?:\s*#?(?P<code>\d{4}))?[\s.!]*$", re.IGNORECASE)


class PayloadError(ValueError):
    """A webhook payload we cannot use (missing fields, a number that is not a number)."""


@functools.lru_cache(maxsize=4096)
def e164(number: str) -> str:
    """``+15551234567`` from any written form of an international number.

    Cached (bounded): every text reads two numbers, ours and a texter's that repeats, and
    libphonenumber's parse is about a tenth of the API's CPU per text. A refusal is raised
    again each time (a cache keeps only returns)."""
    try:
        parsed = phonenumbers.parse(number.strip(), None)
    except phonenumbers.NumberParseException:
        raise PayloadError(f"not a phone number: {number[:40]!r}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise PayloadError(f"not a possible phone number: {number[:40]!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class InboundSms(BaseModel):
    """One text a person sent to our number (Twilio's messaging webhook)."""

    model_config = ConfigDict(frozen=True)

    message_sid: str = Field(min_length=10, max_length=64)
    sender: str
    """E.164, normalized."""
    to: str
    body: str = Field(max_length=MAX_BODY)
    opt_out_type: str | None = None
    """Set by Twilio's Advanced Opt-Out: STOP, START or HELP."""


class StatusReport(BaseModel):
    """A delivery status callback for a message we sent."""

    model_config = ConfigDict(frozen=True)

    message_sid: str = Field(min_length=10, max_length=64)
    status: str = Field(max_length=40)
    error_code: str | None = None
    to: str | None = Field(default=None, max_length=40)
    """The number the text went to."""
    thread_id: str | None = Field(default=None, max_length=100)
    outbox_id: str | None = Field(default=None, max_length=100)
    """The item the text carried, from our tag in the callback URL (which Twilio signs)."""


STATUSES = frozenset(
    {"accepted", "scheduled", "canceled", "queued", "sending", "sent", "delivered"}
    | {"undelivered", "failed", "read", "partially_delivered", "receiving", "received"}
)
"""Twilio's message statuses; a callback with anything else is refused."""


def inbound(form: Mapping[str, str]) -> InboundSms:
    # Twilio always sends Body, empty for a picture without words: a form without it is not
    # Twilio's messaging webhook (a status callback posted to the wrong URL, a hand-made call).
    if "Body" not in form:
        raise PayloadError("Body: missing")
    try:
        return InboundSms(
            message_sid=form.get("MessageSid") or form.get("SmsSid") or "",
            sender=e164(form.get("From", "")),
            to=e164(form.get("To", "")),
            body=form["Body"],
            opt_out_type=(form.get("OptOutType") or "").upper() or None,
        )
    except ValidationError as exc:
        raise PayloadError(_first_error(exc)) from None


def status_report(form: Mapping[str, str], query: Mapping[str, str]) -> StatusReport:
    """A status callback's form, and the tag of our callback URL's query."""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if status not in STATUSES:
        raise PayloadError(f"MessageStatus: not a Twilio message status: {status[:40]!r}")
    try:
        return StatusReport(
            message_sid=form.get("MessageSid") or form.get("SmsSid") or "",
            status=status,
            error_code=form.get("ErrorCode") or None,
            to=form.get("To") or None,
            thread_id=query.get("t") or None,
            outbox_id=query.get("o") or None,
        )
    except ValidationError as exc:
        raise PayloadError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


# ---- what a text means -------------------------------------------------------------------
KeywordKind = Literal["opt_out", "opt_in", "help"]
# Advanced Opt-Out names the keyword's kind itself (OptOutType), whatever the word was.
_OPT_OUT_TYPES: dict[str, KeywordKind] = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}


@dataclass(frozen=True)
class Keyword:
    """A compliance keyword (STOP, START, HELP and their synonyms)."""

    kind: KeywordKind


@dataclass(frozen=True)
class Decision:
    """YES / NO to a pending approval, maybe with its code and (for NO) a reason."""

    verdict: Literal["approve", "reject"]
    code: str | None
    comment: str | None
    grant: bool = False
    """``YES ALL``: approved for the rest of the thread (where the tool offers it)."""


def keyword(sms: InboundSms) -> Keyword | None:
    told = _OPT_OUT_TYPES.get(sms.opt_out_type or "")
    if told is not None:
        return Keyword(told)
    word = sms.body.strip().upper()
    if word in OPT_OUT:
        return Keyword("opt_out")
    if word in OPT_IN:
        return Keyword("opt_in")
    if word in HELP:
        return Keyword("help")
    return None


def decision(body: str) -> Decision | None:
    """``YES``, ``y 4821``, ``NO 4821 freeze until Monday``, ``reject: not today``."""
    found = _DECISION.match(body)
    if found is None:
        return None
    rest = found.group("rest").strip()
    verdict = "approve" if found.group("verb").upper() in _APPROVE else "reject"
    every = _ALL.match(rest) if verdict == "approve" else None
    if every is not None and not (found.group("code") and every.group("code")):
        return Decision("approve", found.group("code") or every.group("code"), None, grant=True)
    return Decision(
        verdict="approve" if found.group("verb").upper() in _APPROVE else "reject",
        code=found.group("code"),
        comment=rest or None,
    )
