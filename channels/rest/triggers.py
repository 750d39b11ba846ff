"""``POST /v1/triggers/{name}``: a webhook (an alert, a CI run, a form) starts a thread.

Checked in this order, each refusal storing nothing: the trigger exists (404), the body is
no larger than its ``max_bytes`` (413, by Content-Length before reading, or as soon as the
stream passes it), the request is authenticated (401: a signature over the raw body, with
its timestamp when the trigger asks for one, or a bearer token), the body is a JSON object
and the message template renders from it (422). Then the message is stored on a new thread
whose origin is the trigger's ``report_to``, and the answer is 202 with the thread id: the
agent runs later, in a worker. A delivery the trigger's ``dedupe`` names twice is stored once,
and the repeat is answered with the first one's thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict

from agent.config import Registry
from agent.triggers import TemplateRefused, TriggerConfig, render
from model.events import UserMessage
from model.ids import new_id, thread_id_for
from model.records import Origin
from store.port import ChannelPort, NewThread

CHANNEL = "trigger"
"""The channel of a trigger's message in the thread's log (its sender: the trigger's name)."""


class TriggerAccepted(BaseModel):
    """The thread a delivery started (or, for a repeated delivery, the first one's)."""

    model_config = ConfigDict(frozen=True)

    thread_id: str
    duplicate: bool = False


def _refuse(code: int, detail: str) -> HTTPException:
    return HTTPException(code, detail)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 once it passes ``limit`` (never read whole first)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _refuse(status.HTTP_413_CONTENT_TOO_LARGE, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _refuse(status.HTTP_413_CONTENT_TOO_LARGE, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def signature(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over the body (``<timestamp>.<body>`` with one)."""
    signed = body if timestamp is None else timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def authenticate(
    config: TriggerConfig, headers: Mapping[str, str], body: bytes, now: float
) -> str | None:
    """None when the request proves it comes from the trigger's sender; else why not."""
    kind, value = config.credential()
    if not value:
        return f"the trigger's {kind} is not set (its environment variable is empty)"
    if kind == "token":
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            given.strip().encode(), value.encode()
        ):
            return "missing or wrong bearer token"
        return None
    given = headers.get(config.signature_header.lower(), "")
    stamp: str | None = None
    if config.timestamp_header is not None:
        stamp = headers.get(config.timestamp_header.lower(), "")
        if not stamp.isdigit():
            return f"missing or malformed {config.timestamp_header}"
        if abs(now - int(stamp)) > config.max_age_s:
            return f"stale request: {config.timestamp_header} is more than {config.max_age_s}s off"
    expected = signature(value, body, stamp)
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        return f"missing or wrong {config.signature_header}"
    return None


def delivery_id(config: TriggerConfig, headers: Mapping[str, str], payload: Any) -> str | None:
    """What names this delivery (``dedupe``), or None when the trigger names none.

    Raises HTTPException 422 when the trigger names one and the request lacks it.
    """
    if config.dedupe is None:
        return None
    where, _, name = config.dedupe.partition(":")
    if where == "header" and name:
        found: Any = headers.get(name.lower())
    else:
        found = payload
        for part in config.dedupe.split("."):
            found = found.get(part) if isinstance(found, dict) else None
    if found is None or isinstance(found, dict | list) or str(found) == "":
        raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no {config.dedupe} to dedupe by")
    return str(found)[:200]


def router(port: ChannelPort, registry: Registry) -> APIRouter:
    api = APIRouter(prefix="/v1/triggers", tags=["triggers"])

    @api.post(
        "/{name}",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=TriggerAccepted,
        responses={401: {}, 404: {}, 413: {}, 422: {}},
    )
    async def trigger(name: str, request: Request) -> TriggerAccepted:
        """Start a thread from a webhook; authenticated by the trigger's secret or token."""
        config = registry.triggers.get(name)
        if config is None:
            raise _refuse(status.HTTP_404_NOT_FOUND, f"no trigger {name!r}")
        body = await read_body(request, config.max_bytes)
        why = authenticate(config, request.headers, body, time.time())
        if why is not None:
            raise _refuse(status.HTTP_401_UNAUTHORIZED, why)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, f"not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, "the body must be a JSON object")
        try:
            text = render(config.message, {**payload, "payload": payload})
        except TemplateRefused as exc:
            raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        delivery = delivery_id(config, request.headers, payload)
        # A named delivery derives its thread, so a repeat lands on the first one's thread
        # and its dedupe record there catches it.
        tid = thread_id_for(CHANNEL, f"{name}\x00{delivery}") if delivery else new_id("th")
        event = UserMessage(channel=CHANNEL, sender=name, text=text, message_id=delivery)
        create = NewThread(agent=config.agent, origin=Origin.report_to(config.report_to))
        stored = await port.append_message(
            tid, event, dedupe=delivery or new_id("req"), create=create
        )
        return TriggerAccepted(thread_id=tid, duplicate=not stored)

    return api
