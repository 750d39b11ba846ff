"""The REST API: launch threads, post messages, read threads, answer requests.

Every /v1 call needs ``Authorization: Bearer <SWITCHBOARD_API_TOKEN>`` when a token is set;
without one the service listens on loopback only (see main.py).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.config import Registry
from channels.rest import live
from model.events import HumanResponse, UserMessage
from model.ids import new_id, thread_id_for
from model.records import Origin, RequestView, ThreadSummary, ThreadView
from store.changes import ChangeFeed
from store.digest import Digests
from store.errors import (
    NotAllowed,
    RequestAlreadyAnswered,
    RequestExpired,
    RequestNotFound,
    ThreadNotFound,
)
from store.threads import NewThread, ThreadStore

CHANNEL = "rest"
MAX_TEXT = 20_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewThreadBody(_Body):
    message: str = Field(min_length=1, max_length=MAX_TEXT)
    agent: str | None = Field(
        default=None, description="Agent to talk to; default: the configured default."
    )
    sender: str = Field(default="api", min_length=1, max_length=200)


class MessageBody(_Body):
    message: str = Field(min_length=1, max_length=MAX_TEXT)
    sender: str = Field(default="api", min_length=1, max_length=200)


class Approve(_Body):
    decision: Literal["approve"]
    comment: str | None = Field(default=None, max_length=MAX_TEXT)
    responder: str = Field(default="api", min_length=1, max_length=200)


class Reject(_Body):
    decision: Literal["reject"]
    comment: str | None = Field(default=None, max_length=MAX_TEXT)
    responder: str = Field(default="api", min_length=1, max_length=200)


class Answer(_Body):
    answer: str = Field(min_length=1, max_length=MAX_TEXT)
    responder: str = Field(default="api", min_length=1, max_length=200)


class ThreadCreated(_Body):
    thread_id: str
    duplicate: bool = False


class Accepted(_Body):
    thread_id: str
    duplicate: bool = False


class Answered(_Body):
    request_id: str
    thread_id: str
    status: Literal["answered"] = "answered"


class ThreadOut(ThreadView):
    pending: list[RequestView]


def _bearer(expected: str | None) -> Any:
    async def check(authorization: Annotated[str | None, Header()] = None) -> None:
        if expected is None:
            return
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.encode(), expected.encode()
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def router(store: ThreadStore, registry: Registry, api_token: str | None) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(_bearer(api_token))], tags=["threads"])
    hub = live.Hub(ChangeFeed(store.redis), Digests(store.redis))
    api.include_router(live.router(hub, registry, token_set=api_token is not None))

    @api.post("/threads", status_code=status.HTTP_201_CREATED, response_model=ThreadCreated)
    async def create_thread(
        body: NewThreadBody,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> ThreadCreated:
        """Start a thread with a first message. An Idempotency-Key makes retries safe."""
        agent = registry.get(body.agent)
        if agent is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no agent {body.agent!r}")
        tid = thread_id_for(CHANNEL, idempotency_key) if idempotency_key else new_id("th")
        event = UserMessage(
            channel=CHANNEL, sender=body.sender, text=body.message, message_id=idempotency_key
        )
        stored = await store.append_inbound(
            tid,
            event,
            dedupe=idempotency_key,
            create=NewThread(agent=agent.name, origin=Origin(channel=CHANNEL, address=body.sender)),
        )
        return ThreadCreated(thread_id=tid, duplicate=not stored)

    @api.get("/threads", response_model=list[ThreadSummary])
    async def list_threads(limit: int = 100) -> list[ThreadSummary]:
        """The most recent threads with their status, newest first."""
        return await store.summaries(min(max(limit, 1), 1000))

    @api.get("/threads/{thread_id}", response_model=ThreadOut)
    async def get_thread(thread_id: str) -> ThreadOut:
        """Status, pending requests, events, and messages sent to humans."""
        view = await store.thread(thread_id)
        return ThreadOut(**dict(view), pending=[r for r in view.requests if r.status == "pending"])

    @api.post(
        "/threads/{thread_id}/messages",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
    )
    async def post_message(
        thread_id: str,
        body: MessageBody,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Accepted:
        """A human's message on an existing thread; the agent picks it up in its next step."""
        event = UserMessage(
            channel=CHANNEL, sender=body.sender, text=body.message, message_id=idempotency_key
        )
        stored = await store.append_inbound(thread_id, event, dedupe=idempotency_key)
        return Accepted(thread_id=thread_id, duplicate=not stored)

    @api.get("/requests", response_model=list[RequestView], tags=["requests"])
    async def list_requests(
        status_: Annotated[Literal["pending"], Query(alias="status")] = "pending",
        limit: int = 200,
    ) -> list[RequestView]:
        """Requests waiting for a human, oldest first."""
        return await store.pending_requests(min(max(limit, 1), 1000))

    @api.get("/requests/{request_id}", response_model=RequestView, tags=["requests"])
    async def get_request(request_id: str) -> RequestView:
        return await store.request(request_id)

    @api.post("/requests/{request_id}", response_model=Answered, tags=["requests"])
    async def answer_request(request_id: str, body: Approve | Reject | Answer) -> Answered:
        """Approve or reject an approval request, or answer a question. Once only."""
        view = await store.request(request_id)
        kind = view.request.kind
        if kind == "approval" and isinstance(body, Answer):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                'this request is an approval: send {"decision": "approve"} or '
                '{"decision": "reject", "comment": "..."}',
            )
        if kind == "question" and not isinstance(body, Answer):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                'this request is a question: send {"answer": "..."}',
            )
        response = HumanResponse(
            request_id=request_id,
            channel=CHANNEL,
            responder=body.responder,
            decision=None if isinstance(body, Answer) else body.decision,
            comment=None if isinstance(body, Answer) else body.comment,
            answer=body.answer if isinstance(body, Answer) else None,
        )
        record = await store.answer(request_id, response)
        return Answered(request_id=request_id, thread_id=record.thread_id)

    return api


def install_error_handlers(app: FastAPI) -> None:
    """Store errors become clear HTTP answers."""

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    async def forbidden(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    app.add_exception_handler(ThreadNotFound, not_found)
    app.add_exception_handler(RequestNotFound, not_found)
    app.add_exception_handler(RequestAlreadyAnswered, conflict)
    app.add_exception_handler(RequestExpired, conflict)
    app.add_exception_handler(NotAllowed, forbidden)
