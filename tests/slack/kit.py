"""Sending signed requests to the app the way Slack does, and the names tests share."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from channels.registry import Channel
from model.ids import thread_id_for
from tests.fakes.slack_server import BOT_USER, TEAM, FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ALICE = "U0ALICE"  # an approver of deploy
MALLORY = "U0MALLORY"  # not one
OPS = "S0OPS"  # a user group that may approve
GENERAL = "C0GENERAL"
PUBLIC = "https://sb.example.com"
"""PUBLIC_BASE_URL of the channel under test: approval messages link to thread pages there."""


def sign(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """Slack's v0 signature: HMAC-SHA256 over ``v0:<timestamp>:<raw body>``."""
    stamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + digest.hexdigest()}


@dataclass
class SlackKit:
    fake: FakeSlack
    channel: Channel | None
    """The channel under test, when it runs in this process (None: another process)."""
    http: httpx.AsyncClient
    _events: int = 0

    async def post(
        self,
        body: bytes,
        content_type: str,
        *,
        secret: str = SECRET,
        at: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {"Content-Type": content_type, **sign(body, secret, at), **(headers or {})}
        return await self.http.post("/slack/events", content=body, headers=sent)

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry: int | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """An Events API callback, as Slack posts it."""
        self._events += 1
        body = {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "api_app_id": "A0APP",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{self._events:08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": TEAM, "user_id": BOT_USER, "is_bot": True, "enterprise_id": None}
            ],
        }
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        raw = json.dumps(body).encode()
        return await self.post(raw, "application/json", headers=headers if retry else None, **kw)

    async def interaction(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        """An interactivity request: form-encoded, the JSON in ``payload``."""
        raw = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(raw, "application/x-www-form-urlencoded", **kw)

    async def click(
        self, user: str, action_id: str, request_id: str, channel: str, ts: str, thread_ts: str
    ) -> httpx.Response:
        shown = self.fake.messages.get((channel, ts))
        return await self.interaction(
            {
                "type": "block_actions",
                "user": {"id": user, "username": user.lower(), "team_id": TEAM},
                "api_app_id": "A0APP",
                "token": "legacy-verification-token",
                "container": {
                    "type": "message",
                    "message_ts": ts,
                    "channel_id": channel,
                    "is_ephemeral": False,
                    "thread_ts": thread_ts,
                },
                "trigger_id": f"trigger-{user}-{action_id}",
                "team": {"id": TEAM, "domain": "switchboard-test"},
                "channel": {"id": channel, "name": "general"},
                # Slack sends the message as the clicker saw it: its current blocks.
                "message": {
                    "type": "message",
                    "ts": ts,
                    "thread_ts": thread_ts,
                    "blocks": shown.blocks if shown else [],
                },
                "response_url": "https://hooks.slack.com/actions/never-called",
                "actions": [
                    {
                        "action_id": action_id,
                        "block_id": "sb_decision",
                        "type": "button",
                        "value": request_id,
                        "action_ts": str(time.time()),
                    }
                ],
            }
        )

    async def submit(self, user: str, view: dict[str, Any], reason: str) -> httpx.Response:
        """The reject modal ``view`` (as views.open got it), submitted with ``reason``."""
        state = {"reason": {"reason_input": {"type": "plain_text_input", "value": reason}}}
        return await self.submit_state(user, view, state)

    async def submit_state(
        self, user: str, view: dict[str, Any], values: dict[str, Any]
    ) -> httpx.Response:
        """A modal ``view`` (as views.open got it), submitted with ``values`` as its state."""
        return await self.interaction(
            {
                "type": "view_submission",
                "team": {"id": TEAM, "domain": "switchboard-test"},
                "user": {"id": user, "username": user.lower(), "team_id": TEAM},
                "api_app_id": "A0APP",
                "trigger_id": "trigger-submit",
                "view": {
                    "id": "V0VIEW",
                    "team_id": TEAM,
                    "type": "modal",
                    "callback_id": view["callback_id"],
                    "private_metadata": view["private_metadata"],
                    "state": {"values": values},
                },
            }
        )

    async def settle(self) -> None:
        """Wait for the channel's calls back to Slack (updates, ephemerals, modals)."""
        for close in self.channel.closers if self.channel else []:
            await close()


def mention(
    text: str, ts: str, *, user: str = ALICE, thread_ts: str | None = None
) -> dict[str, Any]:
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
        "channel": GENERAL,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def thread_of(channel_id: str, root_ts: str) -> str:
    return thread_id_for("slack", f"{TEAM}:{channel_id}:{root_ts}")
