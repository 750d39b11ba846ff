"""Fixtures of the email tests: our SMTP server on a free port, a capturing relay, the service.

Used from a test module with ``pytest_plugins = ("tests.email_fixtures",)``; the helpers the
tests import live in tests/email_helpers.py (importing this module directly would keep pytest
from rewriting its asserts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from agent import config
from agent.config import Registry
from agent.settings import Settings
from channels.email import assemble
from channels.email.settings import EmailSettings
from channels.registry import Services
from channels.rest.sender import RestSender
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.conftest import Service
from tests.email_helpers import DOMAIN, PUBLIC, REGISTRY_TOML, TRUSTED, EmailHarness
from tests.fakes.smtp_capture import CaptureServer


@pytest.fixture
def email_registry(tmp_path: Path) -> Registry:
    path = tmp_path / "switchboard.toml"
    path.write_text(REGISTRY_TOML)
    return config.load(path)


@pytest.fixture
async def capture() -> AsyncIterator[CaptureServer]:
    server = CaptureServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def email(
    redis_client: aioredis.Redis,
    store: ThreadStore,
    email_registry: Registry,
    capture: CaptureServer,
) -> AsyncIterator[EmailHarness]:
    settings = EmailSettings(
        email_domain=DOMAIN,
        smtp_listen="127.0.0.1:0",
        smtp_relay_url=f"smtp://127.0.0.1:{capture.port}",
        email_trusted_authserv_ids=[TRUSTED],
        email_max_bytes=64 * 1024,
        smtp_timeout_s=5,
    )
    services = Services(
        Settings(public_base_url=PUBLIC),
        redis_client,
        ChannelPort(store, OutboxStore(redis_client)),
        email_registry,
    )
    parts = assemble(services, settings, DOMAIN)
    await parts.server.start()
    yield EmailHarness(parts, capture, email_registry, services)
    await parts.server.stop()


@pytest.fixture
async def email_service(
    email: EmailHarness,
    service_factory: Callable[..., Awaitable[Service]],
    llm: Any,
) -> Service:
    """Worker and outbox in this loop, with the email sender next to the REST one."""
    return await service_factory(
        llm, reg=email.registry, senders={"rest": RestSender(), "email": email.parts.sender}
    )
