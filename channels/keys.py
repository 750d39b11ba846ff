"""Redis keys shared by the channels (each channel names its own in its keys.py; the core's live
in store/keys.py; same ``sb:`` scheme)."""

from __future__ import annotations

from store.keys import PREFIX

PAGE_SECRET = f"{PREFIX}:{{pages}}:secret"
"""STRING: the key that signs thread-page links when SWITCHBOARD_PAGE_SECRET is not set;
made once by whichever process needs it first, shared by API and workers (no TTL: a new key
would void every link already sent)."""
