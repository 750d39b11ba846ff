"""The channel's one Slack Web API client, over one kept-alive HTTP session.

slack_sdk's AsyncWebClient, given no aiohttp session, opens a new session (a connector, a
TCP connection, for https a TLS handshake) for every call and closes it after: at a
thousand events a second the sign of life alone made a thousand connections a second.
This client opens its session on first use, in the running loop (aiohttp binds a session to
the loop it is made in, and the channel is built before the service's loop runs), and keeps
it until ``close``. bolt's per-request clients are made with ``session=`` this client's
session, so once it is open they share it too.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient


class KeptAliveClient(AsyncWebClient):
    async def _request(self, *, http_verb: str, api_url: str, req_args: dict[str, Any]) -> Any:
        if self.session is None or self.session.closed:
            # The timeout a per-call session would have had (slack_sdk sets it on the session).
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return await super()._request(http_verb=http_verb, api_url=api_url, req_args=req_args)

    async def close(self) -> None:
        """Close the session (at shutdown; a later call opens a new one)."""
        session, self.session = self.session, None
        if session is not None and not session.closed:
            await session.close()
