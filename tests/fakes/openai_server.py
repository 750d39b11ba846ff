"""A fake OpenAI-compatible chat completions server.

The real openai client talks to it over HTTP. Each call takes the next scripted response;
with none scripted, a small rule-based "deploy brain" answers from the rendered thread, so
multi-step flows (and worker processes started by tests) run without scripting every step.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.http_server import BackgroundServer


@dataclass(frozen=True)
class Status:
    """Answer with an HTTP error instead of a completion."""

    code: int
    message: str = "scripted failure"


@dataclass(frozen=True)
class Raw:
    """Answer with this exact message content (e.g. invalid JSON)."""

    content: str


@dataclass(frozen=True)
class Body:
    """Answer 200 with this body instead of a completion (a proxy's error page, say)."""

    text: str
    media_type: str = "text/html"


@dataclass(frozen=True)
class Delay:
    """Answer only after this long (to make the client time out)."""

    seconds: float


Scripted = dict[str, Any] | Status | Raw | Body | Delay


def step(intent: str, **arguments: Any) -> dict[str, Any]:
    """A NextStep as the model would write it."""
    return {"step": {"intent": intent, **arguments}}


_DEPLOY = re.compile(r"deploy (v\d+\.\d+\.\d+) to (staging|production)", re.I)


def deploy_brain(messages: list[dict[str, str]]) -> dict[str, Any]:
    """Decide like a well-behaved model would, from the last line of the rendered thread."""
    thread = messages[-1]["content"].strip().splitlines()
    last = thread[-1] if thread else ""
    if last.startswith("<answer"):
        return step("done_for_now", message="Thanks, noted.")
    if last.startswith('<result tool="deploy">'):
        return step("done_for_now", message=f"Done: {last.split('>', 1)[1].split('<')[0]}")
    if last.startswith('<expired tool="deploy">'):
        return step("done_for_now", message="The approval expired, so I did not deploy.")
    if last.startswith('<rejected tool="deploy">'):
        reason = last.split(">", 1)[1].rsplit("<", 1)[0]
        return step("done_for_now", message=f"Not deploying ({reason}).")
    if last.startswith("<message"):
        found = _DEPLOY.search(last)
        if found:
            return step("deploy", tag=found.group(1), env=found.group(2).lower())
    return step("request_more_information", message="What would you like me to do?")


class FakeOpenAI:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Scripted] = deque()
        self.requests: list[dict[str, Any]] = []
        self.brain: Callable[[list[dict[str, str]]], dict[str, Any]] = deploy_brain
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._complete, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        self.server = BackgroundServer(app)

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1"

    def script(self, *responses: Scripted) -> None:
        with self._lock:
            self._script.extend(responses)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.brain = deploy_brain

    def contexts(self) -> list[str]:
        """The rendered thread (the user message) of every call so far."""
        with self._lock:
            return [r["messages"][-1]["content"] for r in self.requests]

    async def _models(self, request: Request) -> JSONResponse:
        models = [
            {"id": name, "object": "model", "created": 0, "owned_by": "fake"}
            for name in ("fake-model", "gpt-4o-mini")
        ]
        return JSONResponse({"object": "list", "data": models})

    async def _complete(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.requests.append(body)
            scripted = self._script.popleft() if self._script else None
        if isinstance(scripted, Delay):
            await asyncio.sleep(scripted.seconds)
            scripted = None
        if isinstance(scripted, Status):
            return JSONResponse(
                {"error": {"message": scripted.message, "type": "error", "code": None}},
                status_code=scripted.code,
            )
        if isinstance(scripted, Body):
            return Response(scripted.text, media_type=scripted.media_type)
        if isinstance(scripted, Raw):
            content = scripted.content
        else:
            content = json.dumps(scripted if scripted is not None else self.brain(body["messages"]))
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )
