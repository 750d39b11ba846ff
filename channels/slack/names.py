"""People as Slack shows them: display names from users.info (cached), and approver lists.

A decision reads "Approved by Alice Smith (@alice)"; a refusal names who may decide instead.
Names are a courtesy: when users.info fails, the mention alone is shown.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from channels.slack.markup import escape

log = logging.getLogger("switchboard.slack")

CACHE_SECONDS = 3600.0
"""A renamed user shows the new name within the hour."""
CACHE_SIZE = 2000
"""Users remembered per process (a workspace's active approvers fit many times over)."""


class Names:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    async def name(self, user: str) -> str | None:
        """The user's display name (else real name, else handle); None if Slack will not say."""
        now = time.monotonic()
        cached = self._cache.get(user)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            response = await self.client.users_info(user=user)
        except (TimeoutError, SlackApiError, aiohttp.ClientError, OSError) as exc:
            log.info("users.info %s failed: %s", user, exc)
            return cached[1] if cached is not None else None
        info = response.get("user") or {}
        profile = info.get("profile") or {}
        found = profile.get("display_name") or profile.get("real_name") or info.get("name")
        name = str(found) if found else None
        self._cache[user] = (now, name)
        self._cache.move_to_end(user)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return name


def approvers_text(approvers: list[str]) -> str:
    """Who may decide, in Slack markup: people and user groups as mentions, others as is."""
    shown: list[str] = []
    for approver in approvers:
        channel, _, address = approver.partition(":")
        if channel == "slack" and address.startswith("S"):
            shown.append(f"<!subteam^{escape(address)}>")
        elif channel == "slack":
            shown.append(f"<@{escape(address)}>")
        elif address == "*":
            shown.append(f"anyone on {escape(channel)}")
        else:
            shown.append(escape(approver))
    return ", ".join(shown) or "anyone in this conversation"


def not_an_approver(approvers: list[str]) -> str:
    return (
        "You are not among the approvers of this request, so your click changed nothing. "
        f"Who can approve: {approvers_text(approvers)}."
    )
