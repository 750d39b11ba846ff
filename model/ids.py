"""Identifiers: random where nothing outside names the thing, derived where something does."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_id(prefix: str) -> str:
    """A short random id, e.g. ``rq_3kq2x7m4tb2vfa``; 80 bits, URL- and filename-safe."""
    return prefix + "_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def thread_id_for(channel: str, conversation: str) -> str:
    """The thread of a conversation the provider already names (a Slack thread, a phone pair).

    Deriving the id, instead of keeping a lookup table, lets the first message of a
    conversation be stored in one round trip, and a redelivered first message lands on the
    same thread, where the dedupe record catches it.
    """
    digest = hashlib.sha256(f"{channel}\x00{conversation}".encode()).digest()
    return "th_" + base64.b32encode(digest[:10]).decode().lower()
