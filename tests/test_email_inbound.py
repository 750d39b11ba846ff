"""Mail in over real SMTP (smtplib and aiosmtplib to our server): threads, refusals, noise."""

from __future__ import annotations

import asyncio
import smtplib

import aiosmtplib
import pytest
import redis.asyncio as aioredis

from channels.email.chain import MailChain
from channels.email.inbound import Inbound
from channels.email.server import SmtpServer
from channels.email.tokens import Keyring
from model.events import UserMessage
from model.ids import thread_id_for
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from tests.email_helpers import AGENT, ALICE, BOB, DOMAIN, MALLORY, EmailHarness, mail

pytest_plugins = ("tests.email_fixtures",)

FIRST = thread_id_for("email", "m1@example.com")


def messages(events: list[object]) -> list[UserMessage]:
    return [e for e in events if isinstance(e, UserMessage)]


async def test_new_mail_starts_a_thread(email: EmailHarness, store: ThreadStore) -> None:
    refused = await email.send(mail("please deploy v1.2.3 to production\n\n-- \nAlice"))
    assert refused == {}
    view = await store.thread(FIRST)
    assert view.meta.agent == "deploybot"
    assert view.meta.origin.channel == "email"
    assert view.meta.origin.address == ALICE
    assert view.meta.origin.route["message_id"] == "m1@example.com"
    assert view.meta.origin.route["subject"] == "Deploy please"
    [msg] = messages(view.inbox)
    assert (msg.sender, msg.text, msg.message_id) == (
        ALICE,
        "please deploy v1.2.3 to production",
        "m1@example.com",
    )


async def test_duplicate_delivery_is_stored_once(email: EmailHarness, store: ThreadStore) -> None:
    await email.send(mail("hello"))
    await email.asend(mail("hello"), ALICE, [AGENT])
    view = await store.thread(FIRST)
    assert len(messages(view.inbox)) == 1


async def test_unknown_recipient_is_refused_at_rcpt(
    email: EmailHarness, store: ThreadStore
) -> None:
    for to in (f"nobody@{DOMAIN}", "deploybot@elsewhere.test", f"reply+th_x.forged@{DOMAIN}"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
            await email.send(mail("hello", to=to))
        assert caught.value.recipients[to][0] == 550
    assert await store.thread_ids() == []


async def test_forged_reply_token_is_refused(email: EmailHarness, store: ThreadStore) -> None:
    await email.send(mail("hello"))
    good = await email.token(FIRST)
    local, _, _ = good.partition("@")
    forged = local[:-4] + ("aaaa" if not local.endswith("aaaa") else "bbbb") + "@" + DOMAIN
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
        await email.asend(mail("more", to=forged, message_id="m2@example.com"), ALICE, [forged])
    assert caught.value.recipients[0].code == 550


async def test_oversize_mail_is_refused(email: EmailHarness, store: ThreadStore) -> None:
    big = mail("x" * 100 + "\n" + ("y" * 70 + "\n") * 1200)
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as caught:
        await email.send(big)
    assert caught.value.smtp_code == 552
    # A client that does not announce the size is refused after DATA.
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=email.port)
    async with client:
        await client.mail(ALICE)
        await client.rcpt(AGENT)
        with pytest.raises(aiosmtplib.SMTPDataError) as data_error:
            await client.data(big.as_bytes())
    assert data_error.value.code == 552
    assert await store.thread_ids() == []


async def test_unknown_sender_is_refused(email: EmailHarness, store: ThreadStore) -> None:
    with pytest.raises(smtplib.SMTPDataError) as caught:
        await email.send(mail("deploy v1.2.3 to production", sender=MALLORY))
    assert caught.value.smtp_code == 550
    assert await store.thread_ids() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"List-Id": "<ops.lists.example.com>"},
        {"Subject": "Automatic reply: Deploy please"},
    ],
)
async def test_automatic_mail_never_starts_a_thread(
    email: EmailHarness, store: ThreadStore, headers: dict[str, str]
) -> None:
    msg = mail("I am out of the office until Monday.")
    for name, value in headers.items():
        del msg[name]
        msg[name] = value
    assert await email.send(msg) == {}  # accepted (refusing would make a bounce), and dropped
    assert await store.thread_ids() == []


async def test_automatic_mail_never_advances_a_thread(
    email: EmailHarness, store: ThreadStore
) -> None:
    await email.send(mail("hello"))
    reply_to = await email.token(FIRST)
    auto = mail(
        "Out of office",
        to=reply_to,
        message_id="oof@example.com",
        headers={"Auto-Submitted": "auto-replied", "In-Reply-To": "<m1@example.com>"},
    )
    await email.send(auto)
    assert len(messages((await store.thread(FIRST)).inbox)) == 1


async def test_null_sender_is_ignored(email: EmailHarness, store: ThreadStore) -> None:
    assert await email.send(mail("Undeliverable"), envelope_from="<>") == {}
    assert await store.thread_ids() == []


async def test_reply_by_token(email: EmailHarness, store: ThreadStore) -> None:
    await email.send(mail("hello"))
    to = await email.token(FIRST)
    await email.send(mail("second thought", to=to, subject="Re: x", message_id="m2@x.example.com"))
    view = await store.thread(FIRST)
    assert [m.text for m in messages(view.inbox)] == ["hello", "second thought"]


async def test_reply_by_in_reply_to(email: EmailHarness, store: ThreadStore) -> None:
    await email.send(mail("hello"))
    reply = mail(
        "and to staging too",
        sender=BOB,
        message_id="m2@example.com",
        headers={"In-Reply-To": "<m1@example.com>", "References": "<m1@example.com>"},
    )
    await email.send(reply)
    view = await store.thread(FIRST)
    assert [(m.sender, m.text) for m in messages(view.inbox)] == [
        (ALICE, "hello"),
        (BOB, "and to staging too"),
    ]
    assert await store.thread_ids() == [FIRST]


async def test_reply_by_references_only(email: EmailHarness, store: ThreadStore) -> None:
    await email.send(mail("hello"))
    reply = mail(
        "one more thing",
        message_id="m3@example.com",
        headers={"References": "<unknown@example.com> <m1@example.com>"},
    )
    await email.send(reply)
    assert [m.text for m in messages((await store.thread(FIRST)).inbox)] == [
        "hello",
        "one more thing",
    ]


async def test_store_failure_answers_451(email: EmailHarness, redis_client: aioredis.Redis) -> None:
    dead = aioredis.from_url("redis://127.0.0.1:9", socket_connect_timeout=1)
    inbound = Inbound(
        ChannelPort(ThreadStore(dead), OutboxStore(dead)),
        MailChain(dead),
        email.registry,
        Keyring(dead, "secret"),
        domain=DOMAIN,
        trusted_authserv_ids=[],
    )
    server = SmtpServer(inbound, "127.0.0.1", 0, hostname=DOMAIN, max_bytes=64 * 1024)
    await server.start()
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as caught:
            await aiosmtplib.send(
                mail("hello"),
                sender=ALICE,
                recipients=[AGENT],
                hostname="127.0.0.1",
                port=server.port,
            )
        assert caught.value.code == 451
    finally:
        await server.stop()
        await dead.aclose()


async def test_subject_only_mail_and_empty_reply(email: EmailHarness, store: ThreadStore) -> None:
    msg = mail("", subject="deploy v1.2.3 to staging")
    await email.send(msg)
    [first] = messages((await store.thread(FIRST)).inbox)
    assert first.text == "deploy v1.2.3 to staging"
    empty = mail(
        "\n> quoted only\n",
        to=await email.token(FIRST),
        subject="Re: deploy",
        message_id="m2@example.com",
    )
    with pytest.raises(smtplib.SMTPDataError) as caught:
        await email.send(empty)
    assert caught.value.smtp_code == 550


async def test_html_only_mail_over_smtp(email: EmailHarness, store: ThreadStore) -> None:
    msg = mail("")
    msg.set_content("<p>please <b>deploy</b> v1.2.3 to production</p>", subtype="html")
    await email.asend(msg, ALICE, [AGENT])
    [first] = messages((await store.thread(FIRST)).inbox)
    assert first.text == "please deploy v1.2.3 to production"


async def test_concurrent_redeliveries_are_stored_once(
    email: EmailHarness, store: ThreadStore
) -> None:
    msg = mail("hello")
    await asyncio.gather(
        email.send(msg),
        email.send(msg),
        email.asend(msg, ALICE, [AGENT]),
        email.asend(msg, ALICE, [AGENT]),
    )
    assert len(messages((await store.thread(FIRST)).inbox)) == 1


async def test_a_new_mail_is_stored_in_two_round_trips_with_its_records_first(
    email: EmailHarness, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Is it a redelivery (one read), then one pipeline: the mail remembered by its
    Message-ID, the thread's mail chain, then the message (which wakes the thread), in
    that order, so the run it wakes finds both."""
    from redis.asyncio.connection import AbstractConnection

    from channels.email import keys as email_keys
    from store import keys

    sent: list[bytes] = []
    original = AbstractConnection._send_packed_command

    async def counted(self: AbstractConnection, command: object) -> None:
        sent.append(b"".join(command) if isinstance(command, list) else bytes(command))  # type: ignore[arg-type]
        await original(self, command)  # type: ignore[arg-type]

    raw = mail("please deploy v1.2.3 to production").as_bytes()
    monkeypatch.setattr(AbstractConnection, "_send_packed_command", counted)
    assert await email.parts.inbound.receive(ALICE, [AGENT], raw) == "250 2.0.0 OK: stored"
    monkeypatch.undo()
    assert len(sent) == 2
    pipeline = sent[1]
    ref, chain, script = (
        pipeline.index(k.encode())
        for k in (keys.ref("email", "m1@example.com"), email_keys.chain(FIRST), "EVALSHA")
    )
    assert ref < chain < script
    assert await redis_client.get(keys.ref("email", "m1@example.com")) is not None
    assert await redis_client.lrange(email_keys.chain(FIRST), 0, -1) == [b"m1@example.com"]
    assert await redis_client.get(email_keys.parent(FIRST)) == b"m1@example.com"
    # A redelivery: found by its Message-ID in one read, nothing written.
    assert await email.parts.inbound.receive(ALICE, [AGENT], raw) == "250 2.0.0 OK: already stored"
    assert await redis_client.lrange(email_keys.chain(FIRST), 0, -1) == [b"m1@example.com"]
