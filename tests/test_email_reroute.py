"""An approval mailed to an approver who cannot be reached is offered on the thread's origin:
a bounce (a DSN to our address) and a relay's 5xx take the same path, through the run loop."""

from __future__ import annotations

from pathlib import Path

import aiosmtplib
import pytest

from agent.config import Registry
from model.events import DeliveryFailed, Rerouted
from model.records import ThreadView
from tests.conftest import Service
from tests.email_helpers import (
    AGENT,
    BOB,
    EmailHarness,
    approved_by_bob,
    bounce,
)

pytest_plugins = ("tests.email_fixtures",)


@pytest.fixture
def email_registry(tmp_path: Path) -> Registry:
    """Deploys are approved by Bob, by mail, and also by anyone on REST."""
    return approved_by_bob(tmp_path, '"rest:*"')


def _offered_on_rest(view: ThreadView) -> bool:
    return any(o.item.kind == "approval" and o.item.to.channel == "rest" for o in view.outbox)


async def _rest_thread(service: Service) -> str:
    r = await service.api.post(
        "/v1/threads", json={"message": "deploy v1.2.3 to staging", "sender": "ci"}
    )
    return str(r.json()["thread_id"])


async def test_a_bounced_approval_is_offered_on_the_origin(
    email: EmailHarness, email_service: Service
) -> None:
    tid = await _rest_thread(email_service)
    await email_service.settled(tid, "awaiting_human")
    approval = await email.capture.next()
    assert approval.rcpt_tos == [BOB]

    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=email.port)
    async with client:
        await client.sendmail("", [AGENT], bounce(approval, BOB))
    view = await email_service.wait(tid, _offered_on_rest, within=5)
    [failure] = [e for e in view.events if isinstance(e, DeliveryFailed)]
    assert failure.target == f"email:{BOB}"
    assert "550 5.1.1" in failure.reason
    [rerouted] = [e for e in view.events if isinstance(e, Rerouted)]
    assert rerouted.to == "rest:ci"
    assert "bounced" in rerouted.text
    [offer] = [o for o in view.outbox if o.item.kind == "approval" and o.item.to.channel == "rest"]
    assert "bounced" in offer.item.text

    # A second copy of the bounce changes nothing; the REST caller approves, it runs once.
    async with client:
        await client.sendmail("", [AGENT], bounce(approval, BOB))
    rid = failure.request_id
    r = await email_service.api.post(f"/v1/requests/{rid}", json={"decision": "approve"})
    assert r.status_code == 200
    view = await email_service.settled(tid, "done")
    assert len([e for e in view.events if isinstance(e, DeliveryFailed)]) == 1
    assert sum(e.type == "tool_result" for e in view.events) == 1


async def test_a_relay_5xx_is_offered_on_the_origin(
    email: EmailHarness, email_service: Service
) -> None:
    email.capture.refuse = "554 5.7.1 relaying denied"
    tid = await _rest_thread(email_service)
    view = await email_service.wait(tid, _offered_on_rest, within=5)
    [mailed] = [o for o in view.outbox if o.item.to.channel == "email"]
    assert mailed.status == "failed"
    [rerouted] = [e for e in view.events if isinstance(e, Rerouted)]
    assert rerouted.to == "rest:ci"
    assert "554" in rerouted.text
