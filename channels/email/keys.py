"""Redis keys of the email channel (the core's live in store/keys.py; same ``sb:`` scheme).

Keys of one thread's mail carry the thread id as a hash tag, ``sb:email:{th_...}:...``;
shared email keys carry the ``{email}`` tag.
"""

from __future__ import annotations

import hashlib

from store.keys import PREFIX

SECRET = f"{PREFIX}:{{email}}:secret"
"""STRING: the signing secret of reply tokens and links, made on first use when
EMAIL_SECRET is not set (every process of the service then shares it)."""


def link_used(token: str) -> str:
    """STRING marking a one-click link as used; it expires with the link itself."""
    return f"{PREFIX}:{{email}}:link:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def chain(thread_id: str) -> str:
    """LIST of the Message-IDs of a thread's mail, ours and theirs, in the order they were
    sent or received: what the next mail's References carries (RFC 5322 section 3.6.4)."""
    return f"{PREFIX}:email:{{{thread_id}}}:chain"


def parent(thread_id: str) -> str:
    """STRING: the Message-ID of the last mail a human sent on the thread, which our next
    mail answers (In-Reply-To)."""
    return f"{PREFIX}:email:{{{thread_id}}}:parent"


CHAIN_TTL_SECONDS = 90 * 24 * 3600
"""As long as the core keeps references to our mail (store.keys.REF_TTL_SECONDS): a reply
after that starts afresh anyway."""


def refusal_note(address: str) -> str:
    """STRING set while an address has been told, by mail, why its reply did not decide:
    one such note per address per REFUSAL_NOTE_TTL_SECONDS (a forged From cannot make us
    mail someone over and over)."""
    digest = hashlib.sha256(address.lower().encode()).hexdigest()[:32]
    return f"{PREFIX}:{{email}}:refusal-note:{digest}"


def late_note(address: str, request_id: str) -> str:
    """STRING set while an address has been told that a request it answered was settled:
    one such note per address and request per REFUSAL_NOTE_TTL_SECONDS."""
    digest = hashlib.sha256(f"{address.lower()}|{request_id}".encode()).hexdigest()[:32]
    return f"{PREFIX}:{{email}}:late-note:{digest}"


REFUSAL_NOTE_TTL_SECONDS = 3600
"""An hour: enough for the approver to read the note and use the link."""
