"""Redis keys of the SMS channel (the core's live in store/keys.py; same ``sb:`` scheme).

Keys of one phone number carry the number as a hash tag, ``sb:sms:{+15551234567}:...``;
shared SMS keys carry the ``{sms}`` tag.
"""

from __future__ import annotations

from store.keys import PREFIX


def codes(number: str) -> str:
    """HASH of the approvals sent to one number: ``code -> request id``,
    ``rq:<request id> -> code`` the other way, and ``out:<request id> -> outbox id`` of the
    text that carried it (an opt-out reports that delivery failed). Answered requests are
    pruned when read."""
    return f"{PREFIX}:sms:{{{number}}}:codes"


CODES_SETTLED = "settled"
"""Field of ``codes``: the request id last pruned or decided here, so a late YES / NO is told
what became of it instead of starting a conversation."""


OPTED_OUT = f"{PREFIX}:{{sms}}:opted-out"
"""HASH number -> ISO time it texted STOP (or a synonym). Nothing is sent there until START."""


def inbound_seen(message_sid: str) -> str:
    """STRING marking an inbound MessageSid as handled: Twilio's retries are stored once."""
    return f"{PREFIX}:{{sms}}:seen:{message_sid}"


SEEN_TTL_SECONDS = 7 * 24 * 3600
"""How long a MessageSid is remembered; Twilio retries a webhook within minutes, not days."""
CLAIM_TTL_SECONDS = 60
"""An inbound message being handled: a crash mid-way frees it for Twilio's retry after this."""
