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
edits, bots' and our own messages, events we ignore, and every request before bolt has
learned who the bot is (its one ``auth.test``, at its first event): the lean route needs
the bot's user id to drop its own messages and strip its mention.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_sdk.signature import SignatureVerifier
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


def message_events(verifier: SignatureVerifier, messages: Messages, max_body: int) -> LeanHandler:
    """The lean handler: a signed human's message stored and acknowledged, else None."""

    async def handle(request: Request) -> Response | None:
        bot = messages.bot_user_id
        declared = request.headers.get("content-length", "")
        kind = request.headers.get("content-type", "")
        if bot is None or not kind.startswith("application/json"):
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
