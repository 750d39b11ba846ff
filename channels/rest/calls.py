"""Results of long-running tools, and cancelling a thread.

``POST /v1/calls/{call_id}/result`` takes ``{"result": "..."}`` or ``{"error": "..."}``,
authenticated by the API token (a named token records its name) or by the signed URL the
tool was given (``?expires=...&signature=...``, checked here: AccessGuard lets such a
request through to this route only). The first result is stored; a repeat answers 200 with
``duplicate: true`` (what webhook senders that retry expect), nothing stored again. A call
that timed out or was cancelled first answers 409; an unknown call 404.

``POST /v1/threads/{thread_id}/cancel`` asks the thread's run loop to cancel it: pending
requests are withdrawn, started calls dropped, child threads (handoffs) cancelled too.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from channels.rest.auth import UNCHECKED, Caller, CallerDep
from model.events import CallReported, CancelRequested
from model.ids import new_id
from store.calls import CallNotFound
from store.port import ChannelPort

MAX_RESULT = 20_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Result(_Body):
    result: Annotated[str, Field(max_length=MAX_RESULT)]


class Failure(_Body):
    error: Annotated[str, Field(min_length=1, max_length=MAX_RESULT)]


class CallAccepted(_Body):
    call_id: str
    thread_id: str
    duplicate: bool = False


class CancelBody(_Body):
    reason: Annotated[str, Field(max_length=2_000)] = ""


class CancelAccepted(_Body):
    thread_id: str
    status: Literal["cancelling"] = "cancelling"
    duplicate: bool = False


def router(port: ChannelPort) -> APIRouter:
    api = APIRouter()

    @api.post(
        "/calls/{call_id}/result",
        response_model=CallAccepted,
        tags=["calls"],
        responses={
            401: {"description": "no token and no valid signature"},
            404: {"description": "no such started call"},
            409: {"description": "the call timed out or was cancelled before"},
        },
    )
    async def call_result(
        call_id: str,
        body: Result | Failure,
        request: Request,
        expires: Annotated[int | None, Query()] = None,
        signature: Annotated[str | None, Query(max_length=128)] = None,
    ) -> CallAccepted:
        """A long-running tool's result (or error), once."""
        caller = getattr(request.state, "caller", None)
        if not isinstance(caller, Caller):
            raise RuntimeError("/v1/calls is not under a prefix AccessGuard checks")
        if caller is UNCHECKED:
            signed = expires is not None and signature is not None
            if not signed or not await port.call_signed(call_id, expires or 0, signature or ""):
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bad or expired signature")
            by = "signed"
        else:
            by = f"rest:{caller.name}"
        if isinstance(body, Result):
            event = CallReported(call_id=call_id, outcome="result", text=body.result, by=by)
        else:
            event = CallReported(call_id=call_id, outcome="error", text=body.error, by=by)
        try:
            report = await port.report_call(event)
        except CallNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        if report.outcome == "settled":
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"call {call_id} timed out or was cancelled first"
            )
        return CallAccepted(
            call_id=call_id, thread_id=report.thread_id, duplicate=report.outcome == "duplicate"
        )

    @api.post(
        "/threads/{thread_id}/cancel",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=CancelAccepted,
        tags=["threads"],
        responses={404: {"description": "no such thread"}},
    )
    async def cancel_thread(
        thread_id: str,
        caller: CallerDep,
        body: CancelBody | None = None,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> CancelAccepted:
        """Cancel the thread: pending requests withdrawn, child threads cancelled too."""
        if caller is UNCHECKED:  # pragma: no cover - the signed pattern is the result path
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token")
        event = CancelRequested(by=f"rest:{caller.name}", reason=body.reason if body else "")
        stored = await port.cancel(thread_id, event, dedupe=idempotency_key or new_id("req"))
        return CancelAccepted(thread_id=thread_id, duplicate=not stored)

    return api
