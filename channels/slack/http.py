"""POST /slack/events: the Events API and interactivity, handed to bolt on the raw body.

A few lines in the manner of bolt's Starlette adapter, written here so the route can refuse
oversize and undecodable bodies before bolt parses them, and stays typed. A human's message,
the common request, is served ahead of it by a lean route (channels/slack/events.py), which
declines everything else to this one.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, Request, Response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from channels import lean
from channels.slack.events import BotIdentity, message_events
from channels.slack.messages import Messages

PATH = "/slack/events"
MAX_BODY = 256 * 1024
"""Slack's payloads are a few kilobytes; anything this big is not from Slack."""


def mount(
    app: FastAPI, bolt: AsyncApp, signing_secret: str, messages: Messages, path: str = PATH
) -> None:
    verifier = SignatureVerifier(signing_secret)
    identity = BotIdentity(bolt.client, messages)
    lean.serve(app, "POST", path, message_events(verifier, messages, identity, MAX_BODY))

    async def slack_events(request: Request) -> Response:
        """Slack's Events API and interactivity requests (signed by Slack)."""
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            return Response("payload too large", status_code=413)
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return Response("payload too large", status_code=413)
        headers: dict[str, str | Sequence[str]] = {
            name: request.headers.getlist(name) for name in request.headers
        }
        try:
            body = raw.decode("utf-8")
            bolt_request = AsyncBoltRequest(body=body, query=request.url.query, headers=headers)
        except ValueError:  # undecodable or malformed: bolt could not even parse it
            signed = verifier.is_valid(
                raw,
                request.headers.get("x-slack-request-timestamp", "0"),
                request.headers.get("x-slack-signature", ""),
            )
            return Response(
                "malformed request" if signed else "invalid request", 400 if signed else 401
            )
        reply = await bolt.async_dispatch(bolt_request)
        return Response(
            content=reply.body,
            status_code=reply.status,
            headers=reply.first_headers_without_set_cookie(),
        )

    app.add_api_route(path, slack_events, methods=["POST"], include_in_schema=False)
