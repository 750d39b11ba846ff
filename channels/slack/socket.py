"""Socket Mode: the same bolt app over a WebSocket Slack opens to us, for a service without
a public URL. Slack does not sign these payloads; the app-level token authenticates the link."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp


def listener(
    bolt: AsyncApp, app_token: str
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """A long-running task: connect, serve until the service stops, disconnect."""

    async def socket_mode(stop: asyncio.Event) -> None:
        handler = AsyncSocketModeHandler(bolt, app_token)
        # The client retries a failed connect until it succeeds (and reconnects by itself
        # later): let that run beside us, so that it never holds up a shutdown.
        connecting = asyncio.create_task(handler.connect_async())  # type: ignore[no-untyped-call]
        try:
            await stop.wait()
        finally:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            await handler.close_async()  # type: ignore[no-untyped-call]

    return socket_mode
