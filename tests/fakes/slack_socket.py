"""A fake Socket Mode endpoint: the WebSocket Slack opens for apps without a public URL.

It speaks Slack's envelope protocol (hello, then envelopes the app must acknowledge with
their envelope_id) over aiohttp's WebSocket server, in the test's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from aiohttp import WSMsgType, web


class FakeSocketMode:
    def __init__(self) -> None:
        self.url = ""
        self.acks: dict[str, dict[str, Any]] = {}
        self.connected = asyncio.Event()
        self._acked = asyncio.Condition()
        self._ws: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)

    async def start(self) -> FakeSocketMode:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}/link"
        return self

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                "connection_info": {"app_id": "A0APP"},
            }
        )
        self._ws = ws
        self.connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                ack = msg.json()
                async with self._acked:
                    self.acks[ack["envelope_id"]] = ack
                    self._acked.notify_all()
        return ws

    async def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Deliver one envelope (events_api, interactive); returns its envelope id."""
        assert self._ws is not None
        envelope_id = f"env-{next(self._ids)}"
        await self._ws.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return envelope_id

    async def acked(self, envelope_id: str, within: float = 5) -> dict[str, Any]:
        async with self._acked:
            await asyncio.wait_for(self._acked.wait_for(lambda: envelope_id in self.acks), within)
            return self.acks[envelope_id]
