"""Approval routes on a timer, end to end: stage 1 in Slack, a reminder, stage 2 by SMS,
the deadline; through the Slack and Twilio clients against their local fakes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from agent import config
from agent.config import Registry
from agent.llm import OpenAILLM
from agent.settings import Settings
from channels.app import create_app
from channels.registry import Channel, Services
from channels.rest import rest_channel
from channels.rest.auth import Access
from channels.rest.sender import RestSender
from channels.sms import build_channel
from channels.sms.settings import SmsSettings
from model.events import ApprovalDue, Approved, Offered, ToolResult
from store.outbox import OutboxStore
from store.port import ChannelPort
from store.threads import ThreadStore
from store.timers import Timers
from tests.conftest import ROOT, Service
from tests.fakes.twilio_server import FakeTwilio
from tests.slack.kit import ALICE, GENERAL, SlackKit, mention, thread_of
from tests.sms.conftest import ACCOUNT, OURS, PUBLIC, TOKEN, sign

PHONE = "+15551230001"
BOB = "+15551230002"
POLICY = f"""
[agents.deploybot.tools.deploy.approval]
route = [
  {{ notify = ["slack:{ALICE}"] }},
  {{ notify = ["sms:{PHONE}"], after = "2s" }},
]
remind_every = "1s"
"""


@pytest.fixture
def slack_registry(tmp_path: Path, request: pytest.FixtureRequest) -> Registry:
    text = (ROOT / "switchboard.toml").read_text()
    extra = getattr(request, "param", "")
    text = text.replace(
        'approvers = ["rest:*"]',
        f'approvers = ["slack:{ALICE}", "sms:{PHONE}", "sms:{BOB}", "rest:*"]\n'
        + (extra or POLICY),
    )
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    return config.load(path)


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT, TOKEN)
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture
async def sms_channel(
    twilio: FakeTwilio, redis_client: aioredis.Redis, store: ThreadStore, slack_registry: Registry
) -> AsyncIterator[tuple[Channel, httpx.AsyncClient]]:
    twilio.reset()
    services = Services(
        Settings(public_base_url=PUBLIC),
        redis_client,
        ChannelPort(store, OutboxStore(redis_client)),
        slack_registry,
    )
    settings = SmsSettings(
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_from_number=OURS,
        twilio_api_url=twilio.url,
    )
    channel = build_channel(services, settings, PUBLIC)
    assert channel.mount is not None
    rest = rest_channel(services.port, slack_registry, Access())
    app = create_app(redis_client, slack_registry, access=Access(), channels=[rest, channel])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb") as c:
        yield channel, c
    for close in channel.closers:
        with contextlib.suppress(Exception):
            await close()


@pytest.fixture
async def both(
    slack_kit: SlackKit,
    sms_channel: tuple[Channel, httpx.AsyncClient],
    service_factory: Callable[..., Awaitable[Service]],
    llm: OpenAILLM,
    slack_registry: Registry,
) -> Service:
    assert slack_kit.channel is not None
    assert slack_kit.channel.sender is not None
    assert sms_channel[0].sender is not None
    senders = {
        "rest": RestSender(),
        "slack": slack_kit.channel.sender,
        "sms": sms_channel[0].sender,
    }
    return await service_factory(llm, reg=slack_registry, senders=senders)


async def _text(
    hooks: httpx.AsyncClient, body: str, sender: str = PHONE, sid: str = "SM" + "e" * 32
) -> httpx.Response:
    form = {
        "MessageSid": sid,
        "AccountSid": ACCOUNT,
        "From": sender,
        "To": OURS,
        "Body": body,
        "NumMedia": "0",
    }
    headers = {"X-Twilio-Signature": sign(PUBLIC + "/twilio/sms", form)}
    return await hooks.post("/twilio/sms", data=form, headers=headers)


async def test_stage_one_in_slack_then_a_reminder_then_sms_approves(
    slack_kit: SlackKit,
    sms_channel: tuple[Channel, httpx.AsyncClient],
    both: Service,
    twilio: FakeTwilio,
) -> None:
    def counted(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"agent": "deploybot"}) or 0

    reminders, escalations = (
        counted("switchboard_reminders_total"),
        counted("switchboard_escalations_total"),
    )
    root = slack_kit.fake.next_ts()
    r = await slack_kit.event(mention("please deploy v1.2.3 to production", root))
    assert r.status_code == 200, r.text
    tid = thread_of(GENERAL, root)
    view = await both.settled(tid, "awaiting_human")
    [first] = [o for o in view.outbox if o.item.kind == "approval"]
    assert first.item.to.target == f"slack:{ALICE}"
    assert twilio.sent_to(PHONE) == []

    def texted(v: object) -> bool:
        return bool(twilio.sent_to(PHONE))

    view = await both.wait(tid, texted, within=15)
    view = await both.settled(tid, "awaiting_human")
    offered = [e for e in view.events if isinstance(e, Offered)]
    kinds = [(e.kind, e.to) for e in offered]
    # At least one reminder to Alice came before stage 2 asked the phone.
    assert ("remind", [f"slack:{ALICE}"]) in kinds
    stage = kinds.index(("stage", [f"sms:{PHONE}"]))
    assert ("remind", [f"slack:{ALICE}"]) in kinds[:stage]
    assert all(isinstance(e, ApprovalDue) for e in view.events if e.type == "approval_due")
    texts = twilio.sent_to(PHONE)
    assert all(
        t.startswith("deploybot: approve deploy(tag=v1.2.3, env=production)?") for t in texts
    )
    assert any("stage 2: nobody has decided yet" in t for t in texts)

    r = await _text(sms_channel[1], "YES")
    assert "Approved" in r.text, r.text
    view = await both.settled(tid, "done")
    assert [e.output for e in view.events if isinstance(e, ToolResult)] == [
        "deployed v1.2.3 to production"
    ]
    # The audit shows each step, in order.
    kinds = [e["kind"] for e in (await both.api.get(f"/v1/threads/{tid}/audit")).json()]
    assert kinds[0] == "requested"
    assert kinds.index("reminded") < kinds.index("escalated") < kinds.index("approved")
    assert kinds[-2:] == ["approved", "ran"]
    # ... and the metrics count them: a reminder at least, and the escalation to stage 2.
    assert counted("switchboard_reminders_total") > reminders
    assert counted("switchboard_escalations_total") > escalations

    # Decided: the timers still queued fire nothing, and nobody is reminded again.
    offers = len([e for e in view.events if isinstance(e, Offered)])
    assert await Timers(both.store.redis).fire_due() == 0
    view = await both.settled(tid, "done")
    assert len([e for e in view.events if isinstance(e, Offered)]) == offers


DEADLINE = f"""
[agents.deploybot.tools.deploy.approval]
route = [{{ notify = ["slack:{ALICE}"] }}]
deadline = "1s"
on_deadline = "reject"
"""


@pytest.mark.parametrize("slack_registry", [DEADLINE], indirect=True)
async def test_deadline_reject_reaches_the_model_as_the_tool_result(
    slack_kit: SlackKit, both: Service
) -> None:
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("please deploy v1.2.3 to production", root))
    tid = thread_of(GENERAL, root)
    view = await both.settled(tid, "done", within=15)
    [result] = [e for e in view.events if isinstance(e, ToolResult)]
    assert result.outcome == "rejected"
    assert "nobody approved before the deadline" in result.output
    [request] = view.requests
    assert request.status == "expired"


QUORUM = f"""
[agents.deploybot.tools.deploy.approval]
route = [{{ notify = ["slack:{ALICE}", "sms:{PHONE}", "sms:{BOB}"] }}]
quorum = 2

[people.alice]
slack = "{ALICE}"
sms = "{PHONE}"

[people.bob]
sms = "{BOB}"
"""


@pytest.mark.parametrize("slack_registry", [QUORUM], indirect=True)
async def test_two_of_three_counts_people_not_addresses(
    slack_kit: SlackKit,
    sms_channel: tuple[Channel, httpx.AsyncClient],
    both: Service,
    twilio: FakeTwilio,
) -> None:
    root = slack_kit.fake.next_ts()
    await slack_kit.event(mention("please deploy v1.2.3 to production", root))
    tid = thread_of(GENERAL, root)
    view = await both.settled(tid, "awaiting_human")
    [pending] = view.requests
    rid = pending.request.request_id
    assert pending.request.approvals_needed == 2
    dm_channel = "D" + ALICE[1:]  # the fake's DM with Alice
    [dm] = [m for m in slack_kit.fake.messages.values() if m.channel == dm_channel]

    # Alice approves in Slack: counted, and the request stays pending.
    r = await slack_kit.click(ALICE, "sb_approve", rid, dm_channel, dm.ts, dm.ts)
    assert r.status_code == 200, r.text
    await slack_kit.settle()
    view = await both.settled(tid, "awaiting_human")
    [pending] = view.requests
    assert (pending.status, pending.approvals_given) == ("pending", 1)

    # Alice again, by text from her phone: the same person, counted once.
    r = await _text(sms_channel[1], "YES", PHONE, "SM" + "a" * 32)
    assert "already counted" in r.text, r.text
    view = await both.settled(tid, "awaiting_human")
    assert view.requests[0].approvals_given == 1
    assert not [e for e in view.events if isinstance(e, ToolResult)]

    # Bob completes the quorum: the deploy runs once.
    r = await _text(sms_channel[1], "YES", BOB, "SM" + "b" * 32)
    assert "Approved" in r.text, r.text
    view = await both.settled(tid, "done")
    assert [e.output for e in view.events if isinstance(e, ToolResult)] == [
        "deployed v1.2.3 to production"
    ]
    assert [e.person for e in view.events if isinstance(e, Approved)] == ["alice", "bob"]
    assert (view.requests[0].status, view.requests[0].approvals_given) == ("answered", 2)


SELF = """
[agents.deploybot.tools.deploy.approval]
self_approval = false

[people.alice]
rest = "alice"
"""


@pytest.mark.parametrize("slack_registry", [SELF], indirect=True)
async def test_the_requester_may_not_approve_their_own_call(both: Service) -> None:
    r = await both.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to production", "sender": "alice"}
    )
    tid = r.json()["thread_id"]
    view = await both.settled(tid, "awaiting_human")
    rid = view.requests[0].request.request_id
    assert view.requests[0].request.requester == "alice"
    r = await both.api.post(
        f"/v1/requests/{rid}", json={"decision": "approve", "responder": "alice"}
    )
    assert r.status_code == 403, r.text
    assert (await both.store.request(rid)).status == "pending"
    r = await both.api.post(f"/v1/requests/{rid}", json={"decision": "approve", "responder": "ops"})
    assert r.status_code == 200, r.text
    view = await both.settled(tid, "done")
    [approved] = [e for e in view.events if isinstance(e, Approved)]
    assert (approved.channel, approved.responder) == ("rest", "ops")
