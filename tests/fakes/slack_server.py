"""A fake Slack Web API: the methods Switchboard calls, in Slack's JSON wire format.

The real slack_sdk client (and bolt's) talks to it over HTTP on loopback. It keeps the
messages it was asked to post, as Slack would, records every call, and can be told to fail
the next calls of a method (429 with Retry-After, or a 5xx), or to do what a call asks
and then drop the connection before answering (the outcome the caller cannot know).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.http_server import BackgroundServer

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
TEAM = "T0TEAM"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    updates: int = 0
    metadata: dict[str, Any] | None = None

    def wire(self, with_metadata: bool) -> dict[str, Any]:
        """The message as conversations.history / replies list it."""
        message: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "text": self.text,
            "user": BOT_USER,
            "bot_id": BOT_ID,
        }
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            message["metadata"] = self.metadata
        return message


class _Dropped(Response):
    """Start the answer, then cut the connection: the work is done, the caller never knows."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        raise ConnectionAbortedError("fake Slack drops the connection after doing the work")


class FakeSlack:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Posted] = {}
        self.groups: dict[str, list[str]] = {}
        self.users: dict[str, str] = {}
        """Display names users.info reports, by user id (others: user_not_found)."""
        self.reactions: dict[tuple[str, str], set[str]] = defaultdict(set)
        """Our bot's reactions by (channel, message ts)."""
        self.statuses: dict[tuple[str, str], str] = {}
        """Assistant thread statuses by (channel, thread ts); "" once cleared."""
        self.socket_url = ""
        """Where apps.connections.open sends the app (a FakeSocketMode's url)."""
        self._failures: dict[str, deque[list[Any]]] = defaultdict(deque)
        self._drops: dict[str, int] = defaultdict(int)
        self._clock = int(time.time())
        self._seq = 0
        app = Starlette(routes=[Route("/api/{method}", self._call, methods=["POST", "GET"])])
        self.server = BackgroundServer(app)

    @property
    def api_url(self) -> str:
        return f"{self.server.url}/api/"

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.messages.clear()
            self.groups.clear()
            self.reactions.clear()
            self.statuses.clear()
            self.users.clear()
            self.socket_url = ""
            self._failures.clear()
            self._drops.clear()

    def fail(
        self, method: str, status: int, *, retry_after: int | None = None, after: int = 0
    ) -> None:
        """A later call of ``method`` (the next one, or the one after ``after`` successes)
        answers with this HTTP error."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}
        response = JSONResponse(body, status_code=status, headers=headers)
        with self._lock:
            self._failures[method].append([after, response])

    def drop(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` take effect, then the connection drops."""
        with self._lock:
            self._drops[method] += times

    def called(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.args for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str | None) -> list[Posted]:
        """Messages posted in one Slack thread (None: at the channel's top level), in order."""
        with self._lock:
            found = [m for m in self.messages.values() if m.channel == channel]
        return sorted((m for m in found if m.thread_ts == thread_ts), key=lambda m: float(m.ts))

    def next_ts(self) -> str:
        """A Slack timestamp later than every one handed out so far."""
        with self._lock:
            self._seq += 1
            return f"{self._clock}.{self._seq:06d}"

    async def _call(self, request: Request) -> Response:
        method = request.path_params["method"]
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            args: dict[str, Any] = json.loads(raw or b"{}")
        else:
            args = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        args.update(request.query_params)
        token = request.headers.get("authorization", "").removeprefix("Bearer ") or None
        with self._lock:
            self.calls.append(Call(method, args, token))
            failures = self._failures.get(method)
            failure = None
            if failures and failures[0][0] > 0:
                failures[0][0] -= 1
            elif failures:
                failure = failures.popleft()[1]
            dropping = self._drops.get(method, 0) > 0
            if dropping:
                self._drops[method] -= 1
        if failure is not None:
            return failure
        if method == "apps.connections.open":
            if token != APP_TOKEN or not self.socket_url:
                return JSONResponse({"ok": False, "error": "not_allowed_token_type"})
            return JSONResponse({"ok": True, "url": self.socket_url})
        if token != BOT_TOKEN:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return JSONResponse({"ok": False, "error": "unknown_method"}, status_code=404)
        result: dict[str, Any] = handler(args)
        return _Dropped() if dropping else JSONResponse(result)

    # ---- methods ----------------------------------------------------------------------
    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://switchboard-test.slack.com/",
            "team": "Switchboard Test",
            "user": "switchboard",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _blocks(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        raw = args.get("blocks") or []
        return json.loads(raw) if isinstance(raw, str) else list(raw)

    def _json(self, raw: Any) -> dict[str, Any] | None:
        if not raw:
            return None
        return dict(json.loads(raw) if isinstance(raw, str) else raw)

    def _listed(self, found: list[Posted], args: dict[str, Any]) -> dict[str, Any]:
        metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = int(args.get("limit") or 100)
        page = found[:limit]
        return {
            "ok": True,
            "messages": [m.wire(metadata) for m in page],
            "has_more": len(found) > limit,
            "response_metadata": {"next_cursor": ""},
        }

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args["channel"]), str(args["ts"])
        with self._lock:
            found = [
                m
                for m in self.messages.values()
                if m.channel == channel and (m.ts == ts or m.thread_ts == ts)
            ]
        if not found and not ts.replace(".", "").isdigit():
            return {"ok": False, "error": "thread_not_found"}
        return self._listed(sorted(found, key=lambda m: float(m.ts)), args)

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args["channel"])
        oldest = float(args.get("oldest") or 0)
        with self._lock:
            found = [
                m
                for m in self.messages.values()
                if m.channel == channel
                and (m.thread_ts is None or m.thread_ts == m.ts)
                and float(m.ts) > oldest
            ]
        return self._listed(sorted(found, key=lambda m: -float(m.ts)), args)

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users") or "")
        if not users.startswith("U"):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": "D" + users[1:]}}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args["channel"])
        if channel.startswith("C0GONE"):
            return {"ok": False, "error": "channel_not_found"}
        if channel.startswith("U"):  # posting to a user id lands in the app's DM with them
            channel = "D" + channel[1:]
        ts = self.next_ts()
        posted = Posted(
            channel=channel,
            ts=ts,
            text=str(args.get("text") or ""),
            blocks=self._blocks(args),
            thread_ts=args.get("thread_ts"),
            metadata=self._json(args.get("metadata")),
        )
        with self._lock:
            self.messages[(channel, ts)] = posted
        message = {"type": "message", "text": posted.text, "user": BOT_USER, "bot_id": BOT_ID}
        return {"ok": True, "channel": channel, "ts": ts, "message": {**message, "ts": ts}}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args["channel"]), str(args["ts"]))
        with self._lock:
            posted = self.messages.get(key)
            if posted is None:
                return {"ok": False, "error": "message_not_found"}
            posted.text = str(args.get("text") or posted.text)
            posted.blocks = self._blocks(args)
            posted.updates += 1
        return {"ok": True, "channel": key[0], "ts": key[1], "text": posted.text}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self.next_ts()}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = args["view"]
        view = json.loads(view) if isinstance(view, str) else view
        return {"ok": True, "view": {"id": "V0VIEW", **view}}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        key, name = (str(args["channel"]), str(args["timestamp"])), str(args["name"])
        with self._lock:
            if name in self.reactions[key]:
                return {"ok": False, "error": "already_reacted"}
            self.reactions[key].add(name)
        return {"ok": True}

    def _reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        key, name = (str(args["channel"]), str(args["timestamp"])), str(args["name"])
        with self._lock:
            if name not in self.reactions.get(key, set()):
                return {"ok": False, "error": "no_reaction"}
            self.reactions[key].discard(name)
        return {"ok": True}

    def _assistant_threads_setStatus(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, thread_ts = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        if not channel.startswith("D") or not thread_ts:
            # Slack answers so for anything but an assistant thread in the app's DM.
            return {"ok": False, "error": "channel_not_found"}
        if "status" not in args:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            self.statuses[(channel, thread_ts)] = str(args["status"])
        return {"ok": True}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user"))
        with self._lock:
            name = self.users.get(user)
        if name is None:
            return {"ok": False, "error": "user_not_found"}
        profile = {"display_name": name, "real_name": name.title()}
        return {"ok": True, "user": {"id": user, "name": name.lower(), "profile": profile}}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup"))
        with self._lock:
            if group not in self.groups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(self.groups[group])}
