"""The configuration checked as a whole: at every start, and as ``main.py check [--live]``.

``validate`` does what needs no network and stops at the first problem with one line that
names the setting (main.py exits 2 with it). ``main.py check`` shows every part as a table;
``--live`` also reaches each configured one (Redis, the model server, Slack, the SMTP relay,
Twilio) and fails if any does not answer.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from agent import config
from agent.config import Registry
from agent.errors import ConfigError
from agent.llm import OpenAILLM
from agent.settings import Settings, describe
from channels.email import probe as email_probe
from channels.email.sender import Relay
from channels.email.settings import EmailSettings
from channels.rest.auth import Access
from channels.slack import probe as slack_probe
from channels.slack.settings import SlackSettings
from channels.sms import probe as sms_probe
from channels.sms.settings import SmsSettings
from store import connection, embedded

OURS = ("SWITCHBOARD_", "SLACK_", "EMAIL_", "SMTP_", "TWILIO_", "SMS_")
"""Prefixes of our settings: a name with one of them that we do not know is a typo."""
SETTINGS: tuple[type[BaseSettings], ...] = (Settings, SlackSettings, EmailSettings, SmsSettings)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
PROBE_TIMEOUT_S = 15.0


def known_names() -> set[str]:
    """Every setting's environment name: of SETTINGS, and of any other settings class loaded
    (a module added later declares its settings and is known without a change here)."""
    classes: set[type[BaseSettings]] = set(SETTINGS)
    todo: list[type[BaseSettings]] = [BaseSettings]
    while todo:
        for sub in todo.pop().__subclasses__():
            classes.add(sub)
            todo.append(sub)
    return {name.upper() for cls in classes for name in cls.model_fields}


def unknown_names(environ: Iterable[str]) -> list[str]:
    """``SWITCHBOARD_MODLE is not a setting (did you mean SWITCHBOARD_MODEL?)`` per typo."""
    known = known_names()
    problems = []
    for name in sorted(environ):
        if name.startswith(OURS) and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name} is not a setting{hint}")
    return problems


S = TypeVar("S", bound=BaseSettings)


def _channel_settings(cls: type[S]) -> S:
    try:
        return cls()
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


@dataclass(frozen=True)
class Part:
    """One line of the table: a part of the service, whether it is on, and how it is set."""

    name: str
    setting: str
    state: str
    detail: str
    probe: Callable[[], Awaitable[str]] | None = None
    """Reaches the part (``--live``); returns what it found, raises if it cannot."""


@dataclass(frozen=True)
class Checked:
    settings: Settings
    registry: Registry
    parts: list[Part]


def validate(
    settings: Settings, role: str = "serve", environ: Mapping[str, str] | None = None
) -> Checked:
    """Everything that can be checked without the network; ConfigError at the first problem."""
    for problem in unknown_names(os.environ if environ is None else environ):
        raise ConfigError(problem)
    if role == "worker" and settings.redis_url is None:
        raise ConfigError(
            "REDIS_URL is not set: a worker alone would use an embedded Redis of its own that "
            "no API writes to. Give every process the same REDIS_URL (to join the embedded "
            "Redis of `main.py api`: REDIS_URL=unix://<SWITCHBOARD_DATA_DIR>/redis.sock), "
            "or run `main.py` (serve) for API and worker in one process"
        )
    access = Access.from_settings(settings)
    registry = config.load(settings.switchboard_config)
    parts = [
        Part(
            "config",
            "SWITCHBOARD_CONFIG",
            "ok",
            f"{settings.switchboard_config}: agents {', '.join(registry.agents)} "
            f"(default {registry.default})" + _started(registry),
        ),
        _api_part(access),
        _redis_part(settings),
        _model_part(settings),
        _pages_part(settings),
        _slack_part(_channel_settings(SlackSettings)),
        _email_part(_channel_settings(EmailSettings)),
        _sms_part(_channel_settings(SmsSettings), settings),
    ]
    return Checked(settings, registry, parts)


def _started(registry: Registry) -> str:
    """``; triggers a, b; schedules c``: what starts threads besides humans, if anything."""
    said = [
        f"{kind} {', '.join(names)}"
        for kind, names in (("triggers", registry.triggers), ("schedules", registry.schedules))
        if names
    ]
    return "".join(f"; {s}" for s in said)


def _api_part(access: Access) -> Part:
    if not access.token_required:
        return Part("api", "SWITCHBOARD_API_TOKEN(S)", "ok", "no token: loopback only")
    named = f"named tokens: {', '.join(access.named)}" if access.named else ""
    shared = "shared token set" if access.shared else ""
    return Part("api", "SWITCHBOARD_API_TOKEN(S)", "ok", "; ".join(p for p in (shared, named) if p))


def _redis_part(settings: Settings) -> Part:
    url = settings.redis_url
    if url is None:
        try:
            binary = embedded.server_binary()
        except embedded.EmbeddedRedisError as exc:
            raise ConfigError(f"REDIS_URL is not set and {exc}") from None
        detail = f"embedded under {settings.switchboard_data_dir} ({binary})"
        return Part("redis", "REDIS_URL", "embedded", detail)

    async def ping() -> str:
        client = connection.connect(url, retrying=False)
        try:
            info = await client.info("server")
        finally:
            await client.aclose()
        return f"Redis {info.get('redis_version', '?')} answers"

    return Part("redis", "REDIS_URL", "on", _no_password(url), ping)


def _no_password(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def _model_part(settings: Settings) -> Part:
    if not settings.llm_configured:
        return Part("model", "OPENAI_API_KEY / _BASE_URL", "off", "runs will ask a human")
    where = settings.openai_base_url or "OpenAI"

    async def models() -> str:
        key = settings.openai_api_key
        llm = OpenAILLM(
            model=settings.switchboard_model,
            api_key=key.get_secret_value() if key else None,
            base_url=settings.openai_base_url,
            timeout=settings.switchboard_llm_timeout,
        )
        try:
            return await llm.probe()
        finally:
            await llm.close()

    return Part(
        "model", "OPENAI_BASE_URL", "on", f"{settings.switchboard_model} at {where}", models
    )


def _pages_part(settings: Settings) -> Part:
    key = "SWITCHBOARD_PAGE_SECRET set" if settings.switchboard_page_secret else "key in Redis"
    days = settings.switchboard_page_ttl / 86400
    if not settings.public_base_url:
        return Part("pages", "PUBLIC_BASE_URL", "off", "no links to thread pages in messages")
    return Part("pages", "SWITCHBOARD_PAGE_SECRET", "ok", f"{key}; links valid {days:g} days")


def _slack_part(slack: SlackSettings) -> Part:
    if slack.slack_bot_token is None:
        return Part("slack", "SLACK_BOT_TOKEN", "off", "not configured")
    mode = "Socket Mode" if slack.slack_app_token else "Events API over HTTP"
    return Part("slack", "SLACK_BOT_TOKEN", "on", mode, lambda: slack_probe.probe(slack))


def _email_part(email: EmailSettings) -> Part:
    if email.email_domain is None:
        return Part("email", "EMAIL_DOMAIN", "off", "not configured")
    detail = f"{email.email_domain}, listening on {email.smtp_listen}"
    if email.smtp_relay_url is None:
        return Part("email", "EMAIL_DOMAIN", "on", f"{detail}; no SMTP_RELAY_URL: nothing sent")
    try:
        relay = Relay.parse(email.smtp_relay_url.get_secret_value())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    detail += f"; relay {relay.host}:{relay.port}"
    return Part("email", "EMAIL_DOMAIN", "on", detail, lambda: email_probe.probe(email))


def _sms_part(sms: SmsSettings, settings: Settings) -> Part:
    if not sms.configured:
        return Part("sms", "TWILIO_ACCOUNT_SID", "off", "not configured")
    if not E164.match(sms.twilio_from_number or ""):
        raise ConfigError(
            f"TWILIO_FROM_NUMBER={sms.twilio_from_number!r}: use E.164 form (+15551234567)"
        )
    if not settings.public_base_url:
        return Part("sms", "TWILIO_ACCOUNT_SID", "off", "PUBLIC_BASE_URL is needed for webhooks")
    detail = f"from {sms.twilio_from_number}"
    return Part("sms", "TWILIO_ACCOUNT_SID", "on", detail, lambda: sms_probe.probe(sms))


# ---- main.py check --------------------------------------------------------------------------
async def _reach(part: Part) -> Part:
    if part.probe is None:
        return part
    try:
        found = await asyncio.wait_for(part.probe(), PROBE_TIMEOUT_S)
    except TimeoutError:
        return Part(part.name, part.setting, "FAIL", f"no answer in {PROBE_TIMEOUT_S:.0f} s")
    except Exception as exc:
        return Part(part.name, part.setting, "FAIL", f"{type(exc).__name__}: {exc}"[:300])
    return Part(part.name, part.setting, "ok", found)


async def report(checked: Checked, live: bool) -> tuple[str, bool]:
    """The table, and whether everything reached answered."""
    parts = list(await asyncio.gather(*map(_reach, checked.parts))) if live else checked.parts
    rows = [("part", "setting", "state", "detail")]
    rows += [(p.name, p.setting, p.state, p.detail) for p in parts]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
        for r in rows
    ]
    return "\n".join(lines), all(p.state != "FAIL" for p in parts)
