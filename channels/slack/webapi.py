"""The channel's one Slack Web API client, over one kept-alive HTTP session.

slack_sdk's AsyncWebClient, given no aiohttp session, opens a new session (a connector, a
TCP connection, for https a TLS handshake) for every call and closes it after: at a
thousand events a second the sign of life alone made a thousand connections a second.
This client opens its session on first use, in the running loop (aiohttp binds a session to
the loop it is made in, and the channel is built before the service's loop runs), and keeps
it until ``close``. bolt's per-request clients are made with ``session=`` this client's
session, so once it is open they share it too.

``lean_call`` is the sign of life's way to Slack (channels/slack/working.py): one call a
message, where slack_sdk's ``api_call`` (its request arguments, retry state, debug-log
checks and response object) cost as much CPU as aiohttp's request itself.
"""

from __future__ import annotations

import platform
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.version import __version__ as SDK_VERSION
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

RETRIED = (aiohttp.ServerConnectionError, aiohttp.ClientOSError)
"""A kept-alive connection that Slack closed meanwhile: tried once more on a new one, as
slack_sdk's default connection-error retry handler does (ServerDisconnectedError is a
ServerConnectionError)."""
USER_AGENT = f"Python/{platform.python_version()} slackclient/{SDK_VERSION} switchboard"


class KeptAliveClient(AsyncWebClient):
    async def _request(self, *, http_verb: str, api_url: str, req_args: dict[str, Any]) -> Any:
        self._open()
        return await super()._request(http_verb=http_verb, api_url=api_url, req_args=req_args)

    def _open(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            # The timeout a per-call session would have had (slack_sdk sets it on the session).
            # No cookie jar: slack_sdk's own session a call kept none from one call to the
            # next, and filtering a jar's cookies is work on every call.
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self.session

    async def lean_call(self, method: str, args: dict[str, str], *, as_json: bool = False) -> None:
        """POST ``method`` with ``args`` as slack_sdk's ``api_call`` sends them (in the query,
        or ``as_json`` the JSON body; the same headers, proxy and TLS settings), straight
        through the session. Raises SlackApiError as ``api_call`` does for an answer that
        is not ok, and aiohttp's or asyncio's errors for a call that got no answer."""
        url = f"{self.base_url}{method}"
        headers = {
            "Content-Type": "application/json;charset=utf-8"
            if as_json
            else "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT,
            "Authorization": f"Bearer {self.token}",
            **self.headers,
        }
        sent: dict[str, Any] = {"json": args} if as_json else {"params": args}
        tls = self.ssl if self.ssl is not None else True  # aiohttp's default: verify
        for last in (False, True):
            try:
                async with self._open().post(
                    url, headers=headers, ssl=tls, proxy=self.proxy, **sent
                ) as res:
                    try:
                        data = await res.json(content_type=None)
                    except ValueError:  # no JSON (a proxy's error page): not ok
                        data = {}
                    if res.status == 200 and isinstance(data, dict) and data.get("ok"):
                        return
                    answer = data if isinstance(data, dict) else {}
                    raise SlackApiError(  # type: ignore[no-untyped-call]
                        f"The request to the Slack API failed. (url: {url}, status: {res.status})",
                        AsyncSlackResponse(
                            client=self,
                            http_verb="POST",
                            api_url=url,
                            req_args=sent,
                            data=answer,
                            headers=res.headers,  # type: ignore[arg-type]  # as slack_sdk
                            status_code=res.status,
                        ),
                    )
            except RETRIED:
                if last:
                    raise

    async def close(self) -> None:
        """Close the session (at shutdown; a later call opens a new one)."""
        session, self.session = self.session, None
        if session is not None and not session.closed:
            await session.close()
