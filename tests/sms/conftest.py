"""SMS fixtures: a fake Twilio API, the channel mounted on an app, signed webhooks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from twilio.request_validator import RequestValidator

from agent import config
from agent.settings import Settings
from channels.app import create_app
from channels.registry import Channel, Services
from channels.rest import rest_channel
from channels.rest.auth import Access
from channels.rest.sender import RestSender
from channels.sms import build_channel
from channels.sms.settings import SmsSettings
from model.records import ThreadView
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.conftest import Service
from tests.fakes.twilio_server import FakeTwilio

ACCOUNT = "AC" + "5" * 32
TOKEN = "test-auth-token-0123456789abcdef"
OURS = "+15005550006"
APPROVER = "+15551230001"
OTHER = "+15551230002"
TALKER = "+15551230009"
"""Not an approver: allowed to talk to the agent by the agent's ``sms_senders`` setting."""
PUBLIC = "https://switchboard.example.com"

_TOML = """
default_agent = "deploybot"

[agents.deploybot]
module = "agent.examples.deploybot"
prompt = "deploybot/v1"

[agents.deploybot.settings]
sms_senders = {senders}

[agents.deploybot.tools.list_tags]
command = ["{{python}}", "-c", "print('v1.2.3')"]

[agents.deploybot.tools.deploy]
command = ["{{python}}", "-c", "{script}", "{{tag}}", "{{env}}", "{runs}"]
approvers = {approvers}
notify = {notify}
{policy}

[agents.deploybot.tools.rollback]
command = ["{{python}}", "-c", "print('rolled back')"]
"""
# Appends a line to a file per run, so a test can count how often the deploy really ran.
_SCRIPT = (
    "import sys; open(sys.argv[3], 'a').write('x'); "
    "print('deployed', sys.argv[1], 'to', sys.argv[2])"
)


@pytest.fixture(scope="session")
def _twilio_server() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT, TOKEN)
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture
def fake_twilio(_twilio_server: FakeTwilio) -> FakeTwilio:
    _twilio_server.reset()
    return _twilio_server


def approval_to(channel: str) -> Callable[[ThreadView], bool]:
    """Until the thread has an approval item addressed to ``channel``."""

    def check(view: ThreadView) -> bool:
        return any(o.item.kind == "approval" and o.item.to.channel == channel for o in view.outbox)

    return check


def sign(url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(TOKEN).compute_signature(url, params))


@dataclass
class Sms:
    """The SMS channel on an app, with the worker and outbox of ``service`` behind it."""

    service: Service
    channel: Channel
    hooks: httpx.AsyncClient
    fake: FakeTwilio
    runs: Path
    _count: int = 0

    @property
    def store(self) -> ThreadStore:
        return self.service.store

    async def text(
        self,
        sender: str,
        body: str,
        *,
        sid: str | None = None,
        signature: str | None = "valid",
        omit: tuple[str, ...] = (),
        **extra: str,
    ) -> httpx.Response:
        """Post a text as Twilio would: signed over PUBLIC_BASE_URL + path (less ``omit``)."""
        self._count += 1
        form = {
            "MessageSid": sid or f"SM{self._count:032x}",
            "AccountSid": ACCOUNT,
            "From": sender,
            "To": OURS,
            "Body": body,
            "NumMedia": "0",
            **extra,
        }
        for name in omit:
            del form[name]
        return await self._post("/twilio/sms", form, signature)

    async def status(
        self,
        message_sid: str,
        status: str,
        error_code: str | None = None,
        *,
        callback: str | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """A status callback; ``callback``: the URL the text asked for (its tag included)."""
        form = {"MessageSid": message_sid, "MessageStatus": status, "AccountSid": ACCOUNT}
        if error_code:
            form["ErrorCode"] = error_code
        path = callback.removeprefix(PUBLIC) if callback else "/twilio/status"
        return await self._post(path, form, kw.get("signature", "valid"))

    async def _post(self, path: str, form: dict[str, str], signature: str | None) -> httpx.Response:
        headers = {}
        if signature == "valid":
            headers["X-Twilio-Signature"] = sign(PUBLIC + path, form)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return await self.hooks.post(path, data=form, headers=headers)

    def deploys(self) -> int:
        return len(self.runs.read_text()) if self.runs.exists() else 0


@pytest.fixture
async def sms_factory(
    service_factory: Callable[..., Awaitable[Service]],
    llm: Any,
    redis_client: aioredis.Redis,
    store: ThreadStore,
    fake_twilio: FakeTwilio,
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[Sms]]]:
    made: list[Sms] = []

    async def make(
        approvers: tuple[str, ...] = (f"sms:{APPROVER}", "rest:*"),
        notify: tuple[str, ...] = (f"sms:{APPROVER}",),
        budget: int = 2,
        sms_timeout: float = 15.0,
        api_url: str | None = None,
        senders: tuple[str, ...] = (TALKER,),
        policy: str = "",
        registry: config.Registry | None = None,
    ) -> Sms:
        runs = tmp_path / f"deploys-{len(made)}.txt"
        toml = tmp_path / f"switchboard-{len(made)}.toml"
        toml.write_text(
            _TOML.format(
                script=_SCRIPT.replace('"', '\\"'),
                runs=runs,
                approvers=list(approvers).__repr__().replace("'", '"'),
                notify=list(notify).__repr__().replace("'", '"'),
                senders=list(senders).__repr__().replace("'", '"'),
                policy=policy,
            )
        )
        registry = registry or config.load(toml)
        services = Services(
            Settings(public_base_url=PUBLIC),
            redis_client,
            ChannelPort(store, OutboxStore(redis_client)),
            registry,
        )
        settings = SmsSettings(
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=TOKEN,
            twilio_from_number=OURS,
            twilio_api_url=api_url or fake_twilio.url,
            sms_segment_budget=budget,
            sms_timeout=sms_timeout,
        )
        channel = build_channel(services, settings, PUBLIC)
        assert channel.sender is not None
        assert channel.mount is not None
        service = await service_factory(
            llm, reg=registry, senders={"rest": RestSender(), "sms": channel.sender}
        )
        port = ChannelPort(store, OutboxStore(redis_client))
        rest = rest_channel(port, registry, Access())
        app = create_app(redis_client, registry, access=Access(), channels=[rest])
        channel.mount(app)
        hooks = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb")
        sms = Sms(service, channel, hooks, fake_twilio, runs)
        made.append(sms)
        return sms

    yield make
    for sms in made:
        await sms.hooks.aclose()
        for close in sms.channel.closers:
            with contextlib.suppress(Exception):
                await close()
