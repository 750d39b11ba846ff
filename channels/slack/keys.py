"""Redis keys of the Slack channel (the core's live in store/keys.py; same ``sb:`` scheme).

Keys of one thread carry its id as a hash tag, ``sb:slack:{th_...}:...``.
"""

from __future__ import annotations

from store.keys import PREFIX


def working(thread_id: str) -> str:
    """SET of 'channel|ts' of the humans' messages that show our "working" reaction, until
    the agent's next message in Slack clears them."""
    return f"{PREFIX}:slack:{{{thread_id}}}:working"


WORKING_TTL_SECONDS = 24 * 3600
"""A reaction not cleared within a day (the thread failed, its answer went elsewhere) is
forgotten; the emoji stays on the message."""


def approval_posts(thread_id: str, request_id: str) -> str:
    """SET of 'channel|ts' of the messages that offered this approval with buttons (the first
    ask, reminders, a later stage): a withdrawal updates each of them."""
    return f"{PREFIX}:slack:{{{thread_id}}}:posted:{request_id}"


POSTS_TTL_SECONDS = 30 * 24 * 3600
"""An approval undecided for a month is past any deadline worth a button."""


def direct(team: str, channel: str) -> str:
    """STRING: the thread id of the open conversation in one DM; absent once it is done
    (the agent's final answer) or idle for DM_IDLE_SECONDS."""
    return f"{PREFIX}:slack:{{dm:{team}:{channel}}}:open"


DM_IDLE_SECONDS = 8 * 3600
"""A DM quiet for a working day starts a new conversation with its next message."""
