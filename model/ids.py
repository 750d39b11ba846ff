"""Identifiers: random where nothing outside names the thing, derived where something does."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_id(prefix: str) -> str:
    """A short random id, e.g. ``rq_3kq2x7m4tb2vfa``; 80 bits, URL- and filename-safe."""
    return prefix + "_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


REQUEST_PREFIX = "rq_"
THREAD_MARK = "_"
"""Separates a request id's own part (base32: no underscore) from the thread id it carries.
Not a dot, which separates the parts of an email reply token (channels.email.tokens)."""


def request_id_for(thread_id: str) -> str:
    """A request id that names its thread, e.g. ``rq_3kq2x7m4_th_wmpdeia6h6f56hx6``.

    Whoever answers finds the request's record from the id alone (one round trip, no index
    lookup). The own part, 40 random bits, only has to be unique within the thread: the
    thread id makes the whole id unique.
    """
    own = base64.b32encode(secrets.token_bytes(5)).decode().lower()
    return f"{REQUEST_PREFIX}{own}{THREAD_MARK}{thread_id}"


def thread_of_request(request_id: str) -> str | None:
    """The thread a request id names; None for ids made before they named one (those are
    found through the request -> thread index)."""
    if not request_id.startswith(REQUEST_PREFIX):
        return None
    _, mark, thread_id = request_id[len(REQUEST_PREFIX) :].partition(THREAD_MARK)
    return thread_id if mark and thread_id else None


def thread_id_for(channel: str, conversation: str) -> str:
    """The thread of a conversation the provider already names (a Slack thread, a phone pair).

    Deriving the id, instead of keeping a lookup table, lets the first message of a
    conversation be stored in one round trip, and a redelivered first message lands on the
    same thread, where the dedupe record catches it.
    """
    digest = hashlib.sha256(f"{channel}\x00{conversation}".encode()).digest()
    return "th_" + base64.b32encode(digest[:10]).decode().lower()
