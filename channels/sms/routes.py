"""Twilio's webhooks: POST /twilio/sms (texts in) and POST /twilio/status (delivery reports).

Every request is checked against X-Twilio-Signature, computed over the URL Twilio was given:
PUBLIC_BASE_URL + path, not the URL this process sees behind a proxy. Forged or unsigned
requests get 403 and nothing is stored. Texts are answered at once with TwiML.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from channels import lean
from channels.sms import parse
from channels.sms.inbound import SmsInbound

MAX_REQUEST = 64 * 1024
XML = "application/xml"


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


EMPTY_TWIML = str(MessagingResponse())
"""The answer to nearly every text, built once: twiml's element tree costs tens of µs."""


def twiml(reply: str | None = None) -> Response:
    """``<Response/>``, or a ``<Message>`` back to the texter."""
    if not reply:
        return Response(EMPTY_TWIML, media_type=XML)
    answer = MessagingResponse()
    answer.message(reply)
    return Response(str(answer), media_type=XML)


class _SignedForm(dict[str, list[str]]):
    """A form as twilio's RequestValidator reads it: names, and ``getall`` for each one's
    values. Its fallbacks for other mappings cost two exceptions per field (Starlette's
    multidict has ``getlist``, not ``getall``, and scans the whole form for each name), which
    made checking a signature about 40 % slower."""

    @classmethod
    def of(cls, pairs: list[tuple[str, str]]) -> _SignedForm:
        form = cls()
        for name, value in pairs:
            form.setdefault(name, []).append(value)
        return form

    def getall(self, name: str) -> list[str]:
        return self[name]


class Webhooks:
    def __init__(self, inbound: SmsInbound, auth_token: str, public_base_url: str) -> None:
        self.inbound = inbound
        self.validator = RequestValidator(auth_token)
        self.public = public_base_url.rstrip("/")

    async def verified_form(self, request: Request) -> dict[str, str]:
        """The signed form, or Refused."""
        declared = request.headers.get("content-length") or "0"
        if not declared.isdigit() or int(declared) > MAX_REQUEST:
            raise Refused(413, "request too large")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise Refused(415, "expected a form-encoded body")
        body = await request.body()
        if len(body) > MAX_REQUEST:
            raise Refused(413, "request too large")
        try:  # parsed here: form parsing in Starlette would need python-multipart
            pairs = parse_qsl(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise Refused(400, "the body is not UTF-8") from None
        form = _SignedForm.of(pairs)
        signature = request.headers.get(SIGNATURE_HEADER)
        url = self.public + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        if not signature or not self.validator.validate(url, form, signature, algorithm):
            raise Refused(403, "missing or invalid X-Twilio-Signature")
        return dict(pairs)  # a repeated field: its last value, as before

    def mount(self, app: FastAPI) -> None:
        # Served by lean routes (channels/lean.py): the endpoints read the request themselves
        # and need nothing of FastAPI's; its routes stay behind them for the OpenAPI document.
        lean.serve(app, "POST", "/twilio/sms", self._guard(self.sms))
        lean.serve(app, "POST", "/twilio/status", self._guard(self.status))
        app.add_api_route(
            "/twilio/sms",
            self._guard(self.sms),
            methods=["POST"],
            tags=["sms"],
            summary="Twilio messaging webhook",
        )
        app.add_api_route(
            "/twilio/status",
            self._guard(self.status),
            methods=["POST"],
            tags=["sms"],
            summary="Twilio delivery status callback",
        )

    def _guard(
        self, handler: Callable[[dict[str, str], dict[str, str]], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                form = await self.verified_form(request)
                return await handler(form, dict(request.query_params))
            except Refused as exc:
                return Response(exc.reason, status_code=exc.status, media_type="text/plain")
            except parse.PayloadError as exc:
                return Response(str(exc), status_code=400, media_type="text/plain")

        return endpoint

    async def sms(self, form: dict[str, str], query: dict[str, str]) -> Response:
        reply = await self.inbound.text(parse.inbound(form))
        return twiml(reply)

    async def status(self, form: dict[str, str], query: dict[str, str]) -> Response:
        """Signed over the whole URL: the query's item tag is ours, not the caller's."""
        await self.inbound.status(parse.status_report(form, query))
        return Response(status_code=204)
