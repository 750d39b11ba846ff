"""The MCP client, through the official SDK: one session per server in each process, opened
when first needed, opened again after it failed, closed when the service stops.

The SDK's transports and ``ClientSession`` are anyio context managers that must be entered
and left by one task, while calls come from whichever run needs a tool. So each session
lives in a task of its own (``_own``); calls are sent on the session from the callers' tasks
and raced against that task, so a server that dies mid-call ends the call at once instead
of at its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import ClientSession, McpError, StdioServerParameters, types
from mcp.client.stdio import get_default_environment, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage

from agent.errors import McpServerDown
from agent.mcp_config import McpServerConfig
from agent.mcp_tools import OnChange, RemoteResult, RemoteTool

log = logging.getLogger("switchboard.mcp")

T = TypeVar("T")
Streams = tuple[
    MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]
]
CLIENT = types.Implementation(name="switchboard", version="0.1.0")
SSE_READ_TIMEOUT = 300.0
"""Seconds an HTTP server's event stream may stay silent (the SDK's own default)."""


def connect(name: str, config: McpServerConfig, on_change: OnChange) -> McpClient:
    """The ``agent.mcp_tools.Connector`` main.py hands to the toolbox."""
    return McpClient(name, config, on_change)


class McpClient:
    """``agent.mcp_tools.McpServer`` over stdio or streamable HTTP."""

    def __init__(self, name: str, config: McpServerConfig, on_change: OnChange) -> None:
        self.name = name
        self.config = config
        self.on_change = on_change
        self._session: ClientSession | None = None
        self._owner: asyncio.Task[None] | None = None
        self._release = asyncio.Event()
        self._lock = asyncio.Lock()
        self._opened = 0
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- McpServer ---------------------------------------------------------------------
    async def list_tools(self) -> list[RemoteTool]:
        session = await self._open()
        found: list[RemoteTool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            try:
                page = await self._race(session.list_tools(params=params))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, McpError) as exc:
                self._drop()
                raise McpServerDown(self.name, _reason(exc)) from None
            found += [_remote(t) for t in page.tools]
            cursor = page.nextCursor
            if not cursor:
                return found

    async def call_tool(self, name: str, arguments: dict[str, Any], within: float) -> RemoteResult:
        timeout = timedelta(seconds=within)
        try:
            session = await self._open()
            try:
                result = await self._race(session.call_tool(name, arguments, timeout))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                # The session had ended before the request went out (a server that exited
                # while idle): nothing was sent, so it is safe to send it on a new one.
                self._drop()
                session = await self._open()
                result = await self._race(session.call_tool(name, arguments, timeout))
        except McpError as exc:  # the protocol's error: an unknown tool, a timeout...
            if exc.error.code == types.CONNECTION_CLOSED:
                self._drop()
                raise McpServerDown(self.name, "the connection was lost during the call") from None
            if exc.error.code == httpx.codes.REQUEST_TIMEOUT:
                return RemoteResult(text=f"no answer within {within:g}s", is_error=True)
            return RemoteResult(text=exc.error.message, is_error=True)
        except RuntimeError as exc:  # the SDK's check of structured output against its schema
            return RemoteResult(text=str(exc)[:300], is_error=True)
        return RemoteResult(text=_text(result), is_error=result.isError)

    async def close(self) -> None:
        self._closed = True
        self._release.set()
        owner = self._owner
        if owner is not None and not owner.done():
            try:
                await asyncio.wait_for(asyncio.shield(owner), self.config.connect_timeout)
            except TimeoutError:
                owner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await owner
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.config.connect_timeout)

    # ---- the session ---------------------------------------------------------------------
    def _drop(self) -> None:
        """Forget a session that failed; its task ends, and the next call opens another."""
        self._release.set()
        self._session = None
        if self._owner is not None:
            self._tasks.add(self._owner)
            self._owner.add_done_callback(self._tasks.discard)
        self._owner = None

    async def _open(self) -> ClientSession:
        async with self._lock:
            if self._session is not None and self._owner is not None and not self._owner.done():
                return self._session
            if self._closed:
                raise McpServerDown(self.name, "the service is stopping")
            ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
            self._release = asyncio.Event()
            owner = asyncio.create_task(self._own(ready, self._release), name=f"mcp {self.name}")
            try:
                session = await asyncio.wait_for(asyncio.shield(ready), self.config.connect_timeout)
            except TimeoutError:
                ready.cancel()
                owner.cancel()
                raise McpServerDown(
                    self.name, f"no answer within {self.config.connect_timeout:g}s"
                ) from None
            self._session, self._owner = session, owner
            self._opened += 1
        if self._opened > 1:
            # A new session after a failure: the server may have restarted with other tools.
            self._spawn(self.on_change())
        return session

    async def _own(self, ready: asyncio.Future[ClientSession], release: asyncio.Event) -> None:
        """Open the transport and the session, hand the session out, hold it until released."""
        try:
            async with (
                self._transport() as (read, write),
                ClientSession(
                    read,
                    write,
                    read_timeout_seconds=timedelta(seconds=self.config.connect_timeout),
                    message_handler=self._on_message,
                    client_info=CLIENT,
                ) as session,
            ):
                await session.initialize()
                if not ready.done():
                    ready.set_result(session)
                await release.wait()
        except Exception as exc:  # anyio raises what went wrong in an ExceptionGroup
            reason = _reason(exc)
            if not ready.done():
                ready.set_exception(McpServerDown(self.name, reason))
            elif not release.is_set():
                log.warning("MCP server %s: connection lost (%s)", self.name, reason)
        finally:
            if self._owner is asyncio.current_task():  # not a newer session's place
                self._session = None

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[Streams]:
        config = self.config
        if config.command is not None:
            argv = [part.replace("{python}", sys.executable) for part in config.command]
            params = StdioServerParameters(
                command=argv[0], args=argv[1:], env={**get_default_environment(), **config.env}
            )
            async with stdio_client(params) as (read, write):
                yield read, write
            return
        assert config.url is not None
        timeout = httpx.Timeout(config.connect_timeout, read=SSE_READ_TIMEOUT)
        async with (
            httpx.AsyncClient(headers=config.headers, timeout=timeout) as http,
            streamable_http_client(config.url, http_client=http) as (read, write, _),
        ):
            yield read, write

    async def _race(self, call: Awaitable[T]) -> T:
        """Await ``call`` unless the session's task ends first (the server went away)."""
        owner = self._owner
        task = asyncio.ensure_future(call)
        if owner is None:
            task.cancel()
            raise McpServerDown(self.name, "no session")
        await asyncio.wait({task, owner}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise McpServerDown(self.name, "the connection was lost during the call")

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ToolListChangedNotification
        ):
            # Not awaited here: listing again from inside the session's receive loop would
            # wait for a reply that loop itself must read.
            self._spawn(self.on_change())
        elif isinstance(message, Exception):
            log.debug("MCP server %s: %s", self.name, _reason(message))
        await anyio.lowlevel.checkpoint()

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("MCP server %s: refreshing its tools failed", self.name)

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _remote(tool: types.Tool) -> RemoteTool:
    hints = tool.annotations
    return RemoteTool(
        name=tool.name,
        description=tool.description or "",
        input_schema=tool.inputSchema,
        read_only_hint=hints.readOnlyHint if hints else None,
        destructive_hint=hints.destructiveHint if hints else None,
        idempotent_hint=hints.idempotentHint if hints else None,
        open_world_hint=hints.openWorldHint if hints else None,
    )


def _text(result: types.CallToolResult) -> str:
    """The result's content as text: text blocks as they are, anything else named."""
    parts: list[str] = []
    for block in result.content:
        match block:
            case types.TextContent(text=text):
                parts.append(text)
            case types.EmbeddedResource(resource=types.TextResourceContents(text=text)):
                parts.append(text)
            case types.EmbeddedResource(resource=resource):
                parts.append(f"[resource {resource.uri}]")
            case types.ResourceLink(uri=uri):
                parts.append(f"[resource {uri}]")
            case types.ImageContent(mimeType=mime) | types.AudioContent(mimeType=mime):
                parts.append(f"[{mime} content]")
    if not parts and result.structuredContent is not None:
        parts.append(json.dumps(result.structuredContent))
    return "\n".join(parts)


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}"[:200] if text else type(exc).__name__
