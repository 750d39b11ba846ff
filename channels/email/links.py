"""One-click approval links: ``GET /email/approve/<token>`` shows what is being decided and a
button; ``POST`` decides. A GET never decides, because mail scanners open links by themselves.

A link is signed for one request, one decision and one approver (the address the mail went
to), expires, and works once.
"""

from __future__ import annotations

import html
import time
from urllib.parse import parse_qs

import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from channels.email import keys
from channels.email.tokens import Keyring, LinkClaim
from channels.late import late_reply
from model.events import decided
from model.records import RequestView
from store.errors import (
    NotAllowed,
    RequestAlreadyAnswered,
    RequestExpired,
    RequestNotFound,
    RequestWithdrawn,
)
from store.port import ChannelPort

CHANNEL = "email"
MAX_FORM_BYTES = 20_000


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head>"
        f'<body style="font-family:sans-serif;max-width:40em;margin:2em auto">'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def _settled(view: RequestView) -> HTMLResponse:
    """What became of a request that is no longer pending (409: the link decides nothing)."""
    title = "No longer pending" if view.status in ("withdrawn", "expired") else "Already decided"
    return _page(title, f"<p>{html.escape(late_reply(view))}</p>", 409)


def router(port: ChannelPort, keyring: Keyring, redis: aioredis.Redis) -> APIRouter:
    api = APIRouter(prefix="/email", tags=["email"])

    async def claim_of(token: str) -> LinkClaim | HTMLResponse:
        claim = (await keyring.signer()).read_link_token(token, int(time.time()))
        if claim is None:
            return _page("Link not valid", "<p>This link is invalid or has expired.</p>", 404)
        if await redis.exists(keys.link_used(token)):
            return _page("Already used", "<p>This link has already been used.</p>", 409)
        return claim

    @api.get("/approve/{token}", response_class=HTMLResponse)
    async def show(token: str) -> HTMLResponse:
        """What the link decides, with a button that does it."""
        claim = await claim_of(token)
        if isinstance(claim, HTMLResponse):
            return claim
        try:
            view = await port.request(claim.request_id)
        except RequestNotFound:
            return _page("Not found", "<p>This request no longer exists.</p>", 404)
        if view.status != "pending":
            return _settled(view)
        reason = (
            '<p><label>Reason<br><textarea name="comment" rows="3" cols="50"></textarea>'
            "</label></p>"
            if claim.decision == "reject"
            else ""
        )
        verb = "Approve" if claim.decision == "approve" else "Reject"
        return _page(
            f"{verb} this request?",
            f"<p>{html.escape(view.request.text)}</p>"
            f'<form method="post">{reason}<button type="submit">{verb}</button></form>',
        )

    @api.post("/approve/{token}", response_class=HTMLResponse)
    async def decide(token: str, request: Request) -> HTMLResponse:
        """Record the decision the link was signed for, once."""
        claim = await claim_of(token)
        if isinstance(claim, HTMLResponse):
            return claim
        body = (await request.body())[:MAX_FORM_BYTES].decode("utf-8", "replace")
        comment = (parse_qs(body).get("comment") or [""])[0].strip() or None
        response = decided(
            claim.decision,
            request_id=claim.request_id,
            channel=CHANNEL,
            responder=claim.approver,
            comment=comment,
        )
        try:
            await port.answer(claim.request_id, response)
        except RequestNotFound:
            return _page("Not found", "<p>This request no longer exists.</p>", 404)
        except (RequestAlreadyAnswered, RequestWithdrawn, RequestExpired):
            try:
                return _settled(await port.request(claim.request_id))
            except RequestNotFound:
                return _page("Not found", "<p>This request no longer exists.</p>", 404)
        except NotAllowed:
            return _page("Not allowed", "<p>You may not decide this request.</p>", 403)
        expires_in = max(claim.expires - int(time.time()), 1)
        await redis.set(keys.link_used(token), "1", ex=expires_in)
        done = "approved" if claim.decision == "approve" else "rejected"
        return _page(f"Request {done}", "<p>Thank you, your decision was recorded.</p>")

    return api
