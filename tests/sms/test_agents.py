"""Two agents, each at its own Twilio number (``sms_numbers``): the number texted picks the
agent, and each agent's texts go out from its own number."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from model.ids import thread_id_for
from tests.agents_toml import two_agents
from tests.fakes.openai_server import FakeOpenAI, step
from tests.sms.conftest import OTHER, OURS, TALKER, Sms

Factory = Callable[..., Awaitable[Sms]]
ROLLBACKS = "+15005550007"


async def test_each_number_reaches_its_agent_which_answers_from_it(
    sms_factory: Factory, fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    registry = two_agents(
        tmp_path,
        f'sms_numbers = ["{OURS}"]\nsms_senders = ["{TALKER}"]',
        f'sms_numbers = ["{ROLLBACKS}"]\nsms_senders = ["{TALKER}"]',
    )
    sms = await sms_factory(registry=registry)
    for number, agent in ((OURS, "deploybot"), (ROLLBACKS, "rollbackbot")):
        fake_llm.script(step("done_for_now", message=f"{agent} here."))
        r = await sms.text(TALKER, "hello", To=number)
        assert r.status_code == 200, r.text
        view = await sms.service.settled(thread_id_for("sms", f"{number}:{TALKER}"), "done")
        assert view.meta.agent == agent
    sent = [(m["From"], m["Body"]) for m in sms.fake.messages if m["To"] == TALKER]
    assert sent == [(OURS, "deploybot here."), (ROLLBACKS, "rollbackbot here.")]


async def test_an_agents_approval_request_goes_out_from_its_own_number(
    sms_factory: Factory, tmp_path: Path
) -> None:
    """Sent to an approver's phone (no number texted to answer from), the request goes out
    from the agent's own number, and the YES texted back to it decides."""
    registry = two_agents(
        tmp_path,
        f'sms_numbers = ["{OURS}"]',
        f'sms_numbers = ["{ROLLBACKS}"]',
        deploy={"rollbackbot": f'approvers = ["sms:{OTHER}"]\nnotify = ["sms:{OTHER}"]'},
    )
    sms = await sms_factory(registry=registry)
    r = await sms.service.api.post(
        "/v1/threads", json={"agent": "rollbackbot", "message": "deploy v1.2.3 to staging"}
    )
    tid = r.json()["thread_id"]
    await sms.service.settled(tid, "awaiting_human")
    [asked] = [m for m in sms.fake.messages if m["To"] == OTHER]
    assert asked["From"] == ROLLBACKS
    assert asked["Body"].startswith("rollbackbot: approve deploy(tag=v1.2.3, env=staging)?")
    r = await sms.text(OTHER, "YES", To=ROLLBACKS)
    assert r.status_code == 200, r.text
    view = await sms.service.settled(tid, "done")
    assert view.events[-1].type == "final_answer"


async def test_an_approver_of_another_agent_reaches_it_on_the_shared_number(
    sms_factory: Factory, tmp_path: Path
) -> None:
    """No ``sms_numbers``: one number for all; a texter only another agent knows reaches it
    (it used to hear "This number is not set up to talk to the agent")."""
    registry = two_agents(tmp_path, "", "", deploy={"rollbackbot": f'approvers = ["sms:{OTHER}"]'})
    sms = await sms_factory(registry=registry)
    r = await sms.text(OTHER, "hello")
    assert "not set up" not in r.text
    view = await sms.service.settled(thread_id_for("sms", f"{OURS}:{OTHER}"), "awaiting_human")
    assert view.meta.agent == "rollbackbot"
    assert sms.fake.sent_to(OTHER) == ["What would you like me to do?"]
    # Nobody knows this one: still refused, on whichever agent.
    r = await sms.text("+15551239999", "hello")
    assert "not set up to talk to the agent" in r.text
