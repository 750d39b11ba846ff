"""The REST API: launch threads, post messages, read threads, answer requests.

Who may call it, and as whom, is channels/rest/auth.py: a bearer token when one is set
(shared, or named: its holder acts under the name), else loopback only.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    status,
)
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from agent import handoff, window
from agent.config import Registry
from agent.errors import ToolFailed
from agent.window import ContextInfo
from channels import edits
from channels.lean import LeanHandler
from channels.rest import calls, live
from channels.rest.auth import Access, Caller, CallerDep
from model.events import AgentStep, Event, HumanResponse, UserMessage, decided
from model.events import Answered as AnswerEvent
from model.ids import new_id, thread_id_for
from model.records import Origin, RequestRecord, RequestView, ThreadSummary, ThreadView
from store.connection import INFRA_ERRORS, Outage
from store.errors import (
    ArgumentsChanged,
    GrantNotOffered,
    NotAllowed,
    NotEditable,
    QuorumIncomplete,
    RequestAlreadyAnswered,
    RequestExpired,
    RequestNotFound,
    RequestWithdrawn,
    ThreadNotFound,
)
from store.port import ChannelPort, NewThread
from telemetry import metrics

CHANNEL = "rest"
MAX_TEXT = 20_000
MAX_KEY = 200
"""The longest Idempotency-Key."""


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
Name = Annotated[
    str, Field(min_length=1, max_length=200, description="Who speaks; default: the token's name.")
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewThreadBody(_Body):
    message: Text
    agent: str | None = Field(
        default=None, description="Agent to talk to; default: the configured default."
    )
    sender: Name | None = None


class MessageBody(_Body):
    message: Text
    sender: Name | None = None


class Approve(_Body):
    decision: Literal["approve"]
    comment: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    responder: Name | None = None
    arguments_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    """The request's ``arguments_hash`` as the approver saw it: refused (409) if it changed."""
    arguments: dict[str, Any] | None = Field(default=None, max_length=100)
    """Edit-then-approve: new values for some of the tool's ``editable`` arguments."""
    grant: Literal["thread"] | None = None
    """``thread``: approve this tool for the rest of the thread (the tool's ``grants``)."""


class Reject(_Body):
    decision: Literal["reject"]
    comment: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    responder: Name | None = None


class Answer(_Body):
    answer: Text
    responder: Name | None = None


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


class TokenUsage(_Body):
    """What the thread's model calls cost, summed over its steps (as the model reported)."""

    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @classmethod
    def of(cls, events: list[Event]) -> TokenUsage:
        steps = [e for e in events if isinstance(e, AgentStep)]
        return cls(
            steps=len(steps),
            input_tokens=sum(e.input_tokens or 0 for e in steps),
            output_tokens=sum(e.output_tokens or 0 for e in steps),
        )


class ChildOut(_Body):
    """A thread this one handed work to (a handoff); ``meta.parent`` links back."""

    thread_id: str
    agent: str
    call_id: str


class ThreadOut(ThreadView):
    pending: list[RequestView]
    usage: TokenUsage
    children: list[ChildOut] = Field(default_factory=list)
    context: ContextInfo | None = None
    """Prompt version, tokens and compaction of the next context (None: agent not configured)."""


class Problem(_Body):
    """Every refusal: what is wrong, in a sentence."""

    detail: str


def _problem(what: str) -> dict[str, Any]:
    return {"model": Problem, "description": what}


REFUSALS: dict[int | str, dict[str, Any]] = {
    401: _problem("missing or wrong bearer token"),
    413: _problem("request body larger than SWITCHBOARD_MAX_BODY"),
    503: _problem("the store (Redis) is unavailable; retry shortly"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _problem("no such thread or request")}


def _dedupe(idempotency_key: str | None) -> str:
    """The append's dedupe key: the client's Idempotency-Key, else one of ours for this
    request, so that the Redis client repeating the append after a dropped connection
    (store/connection.py) cannot store the message twice."""
    return idempotency_key or new_id("req")


async def start_thread(
    port: ChannelPort,
    registry: Registry,
    body: NewThreadBody,
    caller: Caller,
    idempotency_key: str | None,
) -> ThreadCreated:
    """POST /v1/threads once its request is read: the FastAPI route and the lean one."""
    agent = registry.get(body.agent)
    if agent is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no agent {body.agent!r}")
    sender = caller.acting_as(body.sender)
    tid = thread_id_for(CHANNEL, idempotency_key) if idempotency_key else new_id("th")
    event = UserMessage(
        channel=CHANNEL, sender=sender, text=body.message, message_id=idempotency_key
    )
    stored = await port.append_message(
        tid,
        event,
        dedupe=_dedupe(idempotency_key),
        create=NewThread(agent=agent.name, origin=Origin(channel=CHANNEL, address=sender)),
    )
    return ThreadCreated(thread_id=tid, duplicate=not stored)


def lean_start(port: ChannelPort, registry: Registry) -> LeanHandler:
    """POST /v1/threads ahead of FastAPI (channels/lean.py): a JSON body that the route's
    model takes as it is. Anything else (another content type, a body the model refuses, an
    Idempotency-Key too long) is declined, for FastAPI's route to refuse in its own words."""

    async def handle(request: Request) -> Response | None:
        kind = request.headers.get("content-type", "")
        key = request.headers.get("idempotency-key")
        caller = request.scope.get("state", {}).get("caller")
        if kind != "application/json" or not isinstance(caller, Caller):
            return None
        if key is not None and len(key) > MAX_KEY:
            return None
        try:  # as FastAPI reads it: json.loads, then the model in Python mode
            body = NewThreadBody.model_validate(json.loads(await request.body()))
        except ValueError:  # not JSON, or not what the model takes (ValidationError)
            return None
        created = await start_thread(port, registry, body, caller, key)
        return JSONResponse(created.model_dump(mode="json"), status.HTTP_201_CREATED)

    return handle


def router(port: ChannelPort, registry: Registry, access: Access) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["threads"], responses=REFUSALS)
    hub = live.Hub(port.changes, port.digests)
    api.include_router(live.router(hub, registry, token_set=access.token_required))
    api.include_router(calls.router(port))

    @api.post("/threads", status_code=status.HTTP_201_CREATED, response_model=ThreadCreated)
    async def create_thread(
        body: NewThreadBody,
        caller: CallerDep,
        idempotency_key: Annotated[str | None, Header(max_length=MAX_KEY)] = None,
    ) -> ThreadCreated:
        """Start a thread with a first message. An Idempotency-Key makes retries safe."""
        return await start_thread(port, registry, body, caller, idempotency_key)

    @api.get("/threads", response_model=list[ThreadSummary])
    async def list_threads(limit: int = 100) -> list[ThreadSummary]:
        """The most recent threads with their status, newest first."""
        return await port.summaries(min(max(limit, 1), 1000))

    @api.get("/threads/{thread_id}", response_model=ThreadOut, responses=NOT_FOUND)
    async def get_thread(thread_id: str) -> ThreadOut:
        """Status, pending requests, events, and messages sent to humans."""
        view = await port.thread(thread_id)
        agent = registry.agents.get(view.meta.agent)
        return ThreadOut(
            **dict(view),
            pending=[r for r in view.requests if r.status == "pending"],
            usage=TokenUsage.of(view.events),
            children=[ChildOut(**vars(c)) for c in handoff.children(view.events)],
            context=window.describe(agent, thread_id, view.events) if agent else None,
        )

    @api.post(
        "/threads/{thread_id}/messages",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        responses=NOT_FOUND,
    )
    async def post_message(
        thread_id: str,
        body: MessageBody,
        caller: CallerDep,
        idempotency_key: Annotated[str | None, Header(max_length=MAX_KEY)] = None,
    ) -> Accepted:
        """A human's message on an existing thread; the agent picks it up in its next step."""
        sender = caller.acting_as(body.sender)
        event = UserMessage(
            channel=CHANNEL, sender=sender, text=body.message, message_id=idempotency_key
        )
        stored = await port.append_message(thread_id, event, dedupe=_dedupe(idempotency_key))
        return Accepted(thread_id=thread_id, duplicate=not stored)

    @api.get("/requests", response_model=list[RequestView], tags=["requests"])
    async def list_requests(
        status_: Annotated[Literal["pending"], Query(alias="status")] = "pending",
        limit: int = 200,
    ) -> list[RequestView]:
        """Requests waiting for a human, oldest first."""
        return await port.pending_requests(min(max(limit, 1), 1000))

    @api.get(
        "/requests/{request_id}", response_model=RequestView, tags=["requests"], responses=NOT_FOUND
    )
    async def get_request(request_id: str) -> RequestView:
        return await port.request(request_id)

    @api.post(
        "/requests/{request_id}",
        response_model=Answered,
        tags=["requests"],
        responses={
            **NOT_FOUND,
            403: _problem("not one of the request's approvers, or an edit of a fixed argument"),
            409: _problem(
                "already answered, expired, for other arguments, or an edit or grant "
                "from an approval that does not complete the quorum"
            ),
            422: _problem("an edited value the tool refuses, or a grant the tool does not offer"),
        },
    )
    async def answer_request(
        request_id: str, body: Approve | Reject | Answer, caller: CallerDep
    ) -> Answered:
        """Approve or reject an approval request, or answer a question. Once only."""
        responder = caller.acting_as(body.responder)
        view = await port.request(request_id)
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
        response: HumanResponse
        if isinstance(body, Answer):
            response = AnswerEvent(
                request_id=request_id, channel=CHANNEL, responder=responder, answer=body.answer
            )
        else:
            response = decided(
                body.decision,
                request_id=request_id,
                channel=CHANNEL,
                responder=responder,
                comment=body.comment,
            )
            if isinstance(body, Approve):
                response = await _approval(response, body, view.request, responder)
        record = await port.answer(request_id, response)
        return Answered(request_id=request_id, thread_id=record.thread_id)

    async def _approval(
        response: HumanResponse, body: Approve, record: RequestRecord, responder: str
    ) -> HumanResponse:
        """The approval with what it carries: the hash seen, an edited call, a grant."""
        if (body.arguments or body.grant) and not record.may_answer(CHANNEL, responder):
            # Who may decide comes first: a stranger learns nothing about the tool's model.
            raise NotAllowed(record.request_id, f"{CHANNEL}:{responder}")
        update: dict[str, Any] = {"grant": body.grant}
        if body.arguments_hash:
            update["arguments_hash"] = body.arguments_hash
        if body.grant and body.grant not in record.grants:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"{record.tool} cannot be approved for this {body.grant}: its policy has no grants",
            )
        if body.arguments:
            try:
                update["arguments"] = await edits.edited_call(
                    port, registry, record, body.arguments
                )
            except ToolFailed as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.error) from None
        return response.model_copy(update=update)

    return api


class _AsciiJSON(JSONResponse):
    """JSON with non-ASCII escaped: a 422 echoes the input, which may hold a lone surrogate
    that has no UTF-8 form (the default handler then fails with a 500)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def install_error_handlers(app: FastAPI, outage: Outage) -> None:
    """Store errors become clear HTTP answers; Redis away is 503, worth retrying."""

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _AsciiJSON({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        await outage.failed(exc)
        metrics.REDIS_ERRORS.labels("api").inc()
        return JSONResponse(
            {"detail": "the store (Redis) is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    for error in INFRA_ERRORS:
        app.add_exception_handler(error, unavailable)

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
    app.add_exception_handler(ArgumentsChanged, conflict)
    app.add_exception_handler(RequestWithdrawn, conflict)
    app.add_exception_handler(NotAllowed, forbidden)
    app.add_exception_handler(NotEditable, forbidden)
    app.add_exception_handler(QuorumIncomplete, conflict)

    async def unprocessable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    app.add_exception_handler(GrantNotOffered, unprocessable)
