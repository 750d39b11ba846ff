"""What a configured tool does: run a command (argv, never a shell) or call a URL.

Arguments are validated by the tool's pydantic model before an action sees them; a command
gets each one as its own argv item, so nothing the model writes is ever parsed by a shell.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel

from agent import longrun
from agent.errors import ToolFailed
from agent.longrun import Started

OUTPUT_LIMIT = 4000


class CommandAction:
    """``argv`` with ``{field}`` placeholders filled from the arguments; ``{python}`` is this
    interpreter, so example configurations run anywhere."""

    def __init__(self, name: str, argv: Sequence[str], timeout: float = 120.0) -> None:
        if not argv:
            raise ValueError(f"tool {name}: empty command")
        self.name = name
        self.argv = list(argv)
        self.timeout = timeout

    async def __call__(self, args: BaseModel) -> str | Started:
        values: dict[str, Any] = {"python": sys.executable, **args.model_dump(mode="json")}
        call = longrun.current()
        try:
            argv = [part.format_map(values) for part in self.argv]
        except KeyError as exc:
            raise ToolFailed(self.name, f"command uses unknown placeholder {exc}") from None
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # Its own session: a Ctrl-C in the service's terminal (SIGINT to the whole
                # process group) must not kill a deploy halfway; the worker waits for it.
                start_new_session=True,
                env={**os.environ, **call.env()} if call else None,
            )
        except OSError as exc:
            raise ToolFailed(self.name, f"cannot run {argv[0]}: {exc.strerror}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ToolFailed(self.name, f"timed out after {self.timeout:g}s") from None
        if proc.returncode != 0:
            detail = err.decode(errors="replace").strip()[-300:]
            raise ToolFailed(self.name, f"exit status {proc.returncode}: {detail}")
        output = out.decode(errors="replace").strip()
        return (longrun.started(output) if call else None) or output[:OUTPUT_LIMIT]


class HttpAction:
    """POSTs (or another method) the arguments as JSON; the response body is the result."""

    def __init__(
        self,
        name: str,
        url: str,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.url = url
        self.method = method.upper()
        self.headers = dict(headers or {})
        self.timeout = timeout

    async def __call__(self, args: BaseModel) -> str | Started:
        payload = args.model_dump(mode="json")
        call = longrun.current()
        headers = {**self.headers, **call.headers()} if call else self.headers
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                if self.method == "GET":
                    response = await client.get(self.url, params=payload, headers=headers)
                else:
                    response = await client.request(
                        self.method, self.url, json=payload, headers=headers
                    )
        except httpx.HTTPError as exc:
            raise ToolFailed(self.name, f"{type(exc).__name__} calling {self.url}") from None
        if response.is_error:
            raise ToolFailed(
                self.name, f"HTTP {response.status_code}: {response.text.strip()[:300]}"
            )
        output = response.text.strip()
        return (longrun.started(output) if call else None) or output[:OUTPUT_LIMIT]
