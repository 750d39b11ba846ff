"""The channel as the service plugs it in: off without EMAIL_DOMAIN, on with it."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import aiosmtplib
import pytest
import redis.asyncio as aioredis

from agent.config import Registry
from agent.settings import Settings
from channels.email.sender import Relay
from channels.email.server import Credentials, SmtpServer, tls_context
from channels.email.settings import EmailSettings
from channels.registry import CHANNEL_MODULES, Services, build_channels
from model.ids import thread_id_for
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.email_helpers import AGENT, EmailHarness, mail

pytest_plugins = ("tests.email_fixtures",)


def _services(client: aioredis.Redis, store: ThreadStore, registry: Registry) -> Services:
    return Services(Settings(), client, ChannelPort(store, OutboxStore(client)), registry)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_off_without_a_domain(
    redis_client: aioredis.Redis,
    store: ThreadStore,
    email_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EMAIL_DOMAIN", raising=False)
    assert "channels.email" in CHANNEL_MODULES
    on = build_channels(_services(redis_client, store, email_registry))
    assert [c.name for c in on] == ["rest"]  # REST is always on


async def test_on_with_a_domain_and_serving_smtp(
    redis_client: aioredis.Redis,
    store: ThreadStore,
    email_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = _free_port()
    monkeypatch.setenv("EMAIL_DOMAIN", "sb.test")
    monkeypatch.setenv("SMTP_LISTEN", f"127.0.0.1:{port}")
    monkeypatch.setenv("EMAIL_TRUSTED_AUTHSERV_IDS", "mx.sb.test, MX2.sb.test")
    assert EmailSettings().email_trusted_authserv_ids == ["mx.sb.test", "mx2.sb.test"]
    _, channel = build_channels(_services(redis_client, store, email_registry))
    assert channel.name == "email"
    assert channel.sender is None  # no relay configured: receive only
    assert channel.mount is not None
    stop = asyncio.Event()
    assert channel.listeners == []  # the port is bound once and served by each API process
    [listener] = channel.shared
    task = asyncio.create_task(listener.serve(listener.bind(), stop))
    try:

        def send() -> None:
            for _ in range(100):  # bound already; accepting as soon as the task runs
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
                        client.send_message(mail("hello"))
                        return
                except ConnectionRefusedError:
                    time.sleep(0.02)
            raise AssertionError("SMTP listener never came up")

        await asyncio.to_thread(send)
        view = await store.thread(thread_id_for("email", "m1@example.com"))
        assert view.meta.origin.route["agent_address"] == AGENT
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def test_relay_url() -> None:
    relay = Relay.parse("smtp://user%40x:p%3Ass@relay.example.com:587")
    assert (relay.host, relay.port, relay.username, relay.password, relay.tls) == (
        "relay.example.com",
        587,
        "user@x",
        "p:ss",
        False,
    )
    assert Relay.parse("smtps://relay.example.com").port == 465
    with pytest.raises(ValueError, match="SMTP_RELAY_URL"):
        Relay.parse("http://relay.example.com")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate and key, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


async def test_starttls_when_a_certificate_is_configured(
    email: EmailHarness, store: ThreadStore, certificate: tuple[str, str]
) -> None:
    server = SmtpServer(
        email.parts.inbound,
        "127.0.0.1",
        0,
        hostname="sb.test",
        max_bytes=64 * 1024,
        tls=tls_context(*certificate),
    )
    await server.start()
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, start_tls=False)
        async with client:
            await client.ehlo()
            assert client.supports_extension("starttls")
            await client.starttls(validate_certs=False)
            await client.send_message(mail("hello over tls"))
    finally:
        await server.stop()
    view = await store.thread(thread_id_for("email", "m1@example.com"))
    assert view.inbox[0].text == "hello over tls"  # type: ignore[union-attr]


async def test_auth_required_when_configured(
    email: EmailHarness, store: ThreadStore, certificate: tuple[str, str]
) -> None:
    server = SmtpServer(
        email.parts.inbound,
        "127.0.0.1",
        0,
        hostname="sb.test",
        max_bytes=64 * 1024,
        tls=tls_context(*certificate),
        auth=Credentials("relay", "s3cret"),
    )
    await server.start()
    try:
        plain = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, start_tls=False)
        async with plain:
            with pytest.raises(aiosmtplib.SMTPSenderRefused) as caught:
                await plain.send_message(mail("no tls, no login"))
            assert caught.value.code == 530
        for password, accepted in (("wrong", False), ("s3cret", True)):
            client = aiosmtplib.SMTP(
                hostname="127.0.0.1", port=server.port, start_tls=True, validate_certs=False
            )
            async with client:
                if not accepted:
                    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
                        await client.login("relay", password)
                    continue
                await client.login("relay", password)
                await client.send_message(mail("hello with a login"))
    finally:
        await server.stop()
    view = await store.thread(thread_id_for("email", "m1@example.com"))
    assert view.inbox[0].text == "hello with a login"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="STARTTLS"):
        SmtpServer(
            email.parts.inbound,
            "127.0.0.1",
            0,
            hostname="sb.test",
            max_bytes=1024,
            auth=Credentials("relay", "s3cret"),
        )
