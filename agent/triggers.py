"""Threads no human starts: ``[triggers.<name>]`` (a webhook) and ``[schedules.<name>]`` (cron).

Both name an agent, a ``message`` (a Jinja2 template: over the JSON payload for a trigger,
over the tick for a schedule) and ``report_to``, the addresses that get the agent's
questions, approvals and final answer, since nobody is there to read them where the thread
began. Templates run in jinja2's sandbox with StrictUndefined: a payload without a field the
template uses is refused, not rendered as an empty string.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from dotenv import dotenv_values
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent import addresses

_JINJA = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

MAX_MESSAGE_CHARS = 20_000
"""A rendered message longer than this is refused: a template looping over a huge payload."""


class TemplateRefused(ValueError):
    """The message template could not be rendered from what was given (the sender's fault)."""


def check_template(source: str) -> str:
    """``source`` if it compiles; else ValueError with jinja's reason (at load, not at use)."""
    try:
        _JINJA.from_string(source)
    except TemplateError as exc:
        raise ValueError(f"message template: {exc}") from None
    return source


def render(source: str, values: dict[str, Any]) -> str:
    """The message from its template; TemplateRefused saying what is missing or wrong."""
    try:
        text = _JINJA.from_string(source).render(**values).strip()
    except TemplateError as exc:
        raise TemplateRefused(f"message template: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateRefused(f"message template: {type(exc).__name__}: {exc}") from None
    if not text:
        raise TemplateRefused("message template rendered an empty message")
    if len(text) > MAX_MESSAGE_CHARS:
        raise TemplateRefused(f"message longer than {MAX_MESSAGE_CHARS} characters")
    return text


class _Started(BaseModel):
    """What triggers and schedules share: which agent, what it is told, who hears back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str
    message: str
    report_to: list[str] = Field(min_length=1)
    """``channel:address`` places (``slack:C0123``, ``email:oncall@example.com``) that get
    what the thread says to humans; the first is the thread's origin."""

    @field_validator("message")
    @classmethod
    def _template(cls, source: str) -> str:
        return check_template(source)

    @field_validator("report_to")
    @classmethod
    def _report_to(cls, values: list[str]) -> list[str]:
        return [addresses.check(v, "notify") for v in values]


class TriggerConfig(_Started):
    """``[triggers.<name>]``: ``POST /v1/triggers/<name>`` starts a thread on ``agent``.

    Authenticated by an HMAC-SHA256 signature of the raw body (``secret``, GitHub's
    ``X-Hub-Signature-256: sha256=<hex>``) or a bearer ``token``; either may be read from
    the environment instead (``secret_env``, ``token_env``) to keep it out of the file.
    """

    secret: str | None = None
    secret_env: str | None = None
    token: str | None = None
    token_env: str | None = None
    signature_header: str = "X-Hub-Signature-256"
    timestamp_header: str | None = None
    """When set, the signature covers ``<timestamp>.<body>`` (seconds since the epoch, from
    this header), and a timestamp further than ``max_age_s`` from now is refused as stale:
    a captured delivery cannot be replayed later."""
    max_age_s: int = Field(default=300, ge=1)
    dedupe: str | None = None
    """What names one delivery: ``header:X-GitHub-Delivery``, or a dotted payload field
    (``alert.id``). A second delivery with the same value joins the first thread."""
    max_bytes: int = Field(default=256 * 1024, ge=1, le=10 * 1024 * 1024)

    @model_validator(mode="after")
    def _one_credential(self) -> TriggerConfig:
        given = [k for k in ("secret", "secret_env", "token", "token_env") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of secret, secret_env, token, token_env "
                f"(a trigger must be authenticated; given: {', '.join(given) or 'none'})"
            )
        return self

    def credential(self) -> tuple[Literal["secret", "token"], str | None]:
        """Which kind of credential, and its value (None: its environment variable is unset)."""
        if self.secret or self.secret_env:
            return "secret", self.secret or from_env(self.secret_env or "")
        return "token", self.token or from_env(self.token_env or "")


@functools.cache
def from_env(name: str) -> str | None:
    """A variable of the environment, else of ``.env`` in the working directory (where the
    other settings may come from too; read once)."""
    return os.environ.get(name) or dotenv_values(".env").get(name)


class ScheduleConfig(_Started):
    """``[schedules.<name>]``: a thread on ``agent`` at every tick of ``cron``."""

    cron: str
    """Five fields, ``minute hour day-of-month month day-of-week`` (``0 9 * * 1-5``)."""
    timezone: str = "UTC"
    missed: Literal["skip", "once"] = "skip"
    """Ticks that passed while no worker ran: ``skip`` them, or start ``once`` for them all."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {name!r} (an IANA name: Europe/Paris)") from None
        return name

    @model_validator(mode="after")
    def _cron(self) -> ScheduleConfig:
        try:
            CronSim(self.cron, datetime.now(ZoneInfo(self.timezone)))
        except CronSimError as exc:
            raise ValueError(f"cron {self.cron!r}: {exc}") from None
        # Its values are known now: a template they cannot fill fails at start, not at 9:00.
        try:
            render(self.message, tick_values("schedule", datetime.now(self.zone()), 0))
        except TemplateRefused as exc:
            raise ValueError(str(exc)) from None
        return self

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_after(self, when: datetime) -> datetime:
        """The first tick strictly after ``when``, in UTC."""
        local = when.astimezone(self.zone())
        return next(iter(CronSim(self.cron, local))).astimezone(UTC)

    def latest_at(self, when: datetime) -> datetime:
        """The last tick at or before ``when``, in UTC."""
        # cronsim's reverse walk starts strictly before its start: a microsecond later makes
        # a tick at exactly ``when`` count.
        local = (when + timedelta(microseconds=1)).astimezone(self.zone())
        tick = next(iter(CronSim(self.cron, local, reverse=True)))
        return tick.astimezone(UTC)


def tick_values(name: str, tick: datetime, missed: int) -> dict[str, object]:
    """What a schedule's message template sees: ``schedule``, ``tick`` (ISO 8601, in the
    schedule's timezone) and ``missed`` (ticks that passed unstarted before this one)."""
    return {"schedule": name, "tick": tick.isoformat(), "missed": missed}
