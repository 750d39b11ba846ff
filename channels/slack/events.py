"""POST /slack/events for a human's message, ahead of bolt (channels/lean.py).

Most of what Slack posts to an agent is one kind of request: an ``event_callback`` carrying
a human's ``message`` or ``app_mention``. For it, bolt's dispatch (the request object, the
middleware chain, listener matching, the kwargs a listener asks for) was about a third of
the API's CPU per Slack request. This route takes that case alone, with the checks bolt
makes for it: the body's size, the v0 signature and its five-minute timestamp window
(slack_sdk's ``SignatureVerifier``, as bolt uses it), then the listener bolt would call
(``Messages.take``), so a message is stored, deduplicated and acknowledged as before.

Everything else is declined to bolt, unchanged: a bad or missing signature (bolt refuses
it, and the refusal is counted), url_verification and ssl_check, button clicks and modals,
edits, bots' and our own messages, events we ignore.

The lean route needs the bot's user id to drop its own messages and strip its mention. It
learns it as bolt does, by ``auth.test`` with the bot token, once a process (``BotIdentity``):
one call for all the messages that arrive before it answers. Declining them to bolt until
bolt had learned it made each of them call ``auth.test`` itself (bolt caches the answer only
once it has one): 26 calls and some 150 ms of slow acks when load met a new process. bolt
still makes its own call at the first request it gets; a message that comes while Slack
does not answer ``auth.test`` goes to bolt, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response

from channels.lean import LeanHandler
from channels.slack import payloads
from channels.slack.messages import Messages

log = logging.getLogger("slack_bolt.AsyncApp")
"""bolt's logger: a failed write is logged where bolt logged it."""

ACK_HEADERS = {"content-type": "text/plain;charset=utf-8"}
"""bolt's empty acknowledgement carries this content type; so does ours."""
_KINDS = ("message", "app_mention")


class BotIdentity:
    """The bot's own user id (``Messages.bot_user_id``, which bolt's listener sets too), from
    one ``auth.test`` at a time however many requests wait for it."""

    def __init__(self, client: AsyncWebClient, messages: Messages) -> None:
        self.client = client
        self.messages = messages
        self._learning: asyncio.Future[None] | None = None

    async def user_id(self) -> str | None:
        """The id; None while Slack does not tell it (or the token is no bot token, for
        which bolt has no bot user id either)."""
        token = self.client.token
        if self.messages.bot_user_id is None and token is not None and token.startswith("xoxb-"):
            if self._learning is None:
                self._learning = asyncio.ensure_future(self._learn())
            await asyncio.shield(self._learning)  # a request that goes away leaves the call
        return self.messages.bot_user_id

    async def _learn(self) -> None:
        try:
            found = await self.client.auth_test()
            user = found.get("user_id")
            if isinstance(user, str) and self.messages.bot_user_id is None:
                self.messages.bot_user_id = user
        except _ERRORS as exc:  # the next message asks again; bolt answers this one
            log.info("auth.test failed, the message goes to bolt: %s", exc)
        finally:
            self._learning = None


_ERRORS = (SlackApiError, aiohttp.ClientError, OSError, TimeoutError)


def message_events(
    verifier: SignatureVerifier, messages: Messages, identity: BotIdentity, max_body: int
) -> LeanHandler:
    """The lean handler: a signed human's message stored and acknowledged, else None."""

    async def handle(request: Request) -> Response | None:
        declared = request.headers.get("content-length", "")
        kind = request.headers.get("content-type", "")
        if not kind.startswith("application/json"):
            return None
        if not declared.isdigit() or int(declared) > max_body:
            return None  # the full route says 413
        raw = await request.body()
        body = _verified(verifier, request, raw)
        if body is None or body.get("type") != "event_callback":
            return None
        event = body.get("event")
        if not isinstance(event, dict) or event.get("type") not in _KINDS:
            return None
        # Only once the request is Slack's: a forged one makes no call to Slack.
        bot = messages.bot_user_id or await identity.user_id()
        if bot is None:
            return None
        msg = payloads.message(body, bot)
        if msg is None:
            return None  # bolt acknowledges it (an edit goes to its listener)
        try:
            await messages.take(msg)
        except Exception as exc:  # as bolt's listener runner: no ack, so Slack retries
            log.exception("Failed to run listener function (error: %s)", exc)
            return Response(status_code=500, headers=ACK_HEADERS)
        return Response(status_code=200, headers=ACK_HEADERS)

    return handle


def _verified(verifier: SignatureVerifier, request: Request, raw: bytes) -> dict[str, Any] | None:
    """The body, if it is JSON signed by Slack within the window; None for bolt to judge."""
    try:
        signed = verifier.is_valid(
            raw,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
        )
        body = json.loads(raw) if signed else None
    except ValueError:  # a timestamp that is no number, a body that is not UTF-8 or JSON
        return None
    return body if isinstance(body, dict) else None
