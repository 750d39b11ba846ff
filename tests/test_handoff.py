"""Handoff between agents over REST: the child's answer is the parent's tool result, the
depth limit refuses a chain too long, and cancelling the parent cancels the child."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from agent import config
from agent.config import Registry
from agent.errors import ConfigError
from agent.handoff import CHANNEL
from agent.llm import OpenAILLM
from model.events import (
    AgentStep,
    Cancelled,
    FinalAnswer,
    SystemNote,
    ToolError,
    ToolResult,
    ToolStarted,
    UserMessage,
)
from model.ids import thread_id_for
from model.records import Origin, ParentLink
from store.threads import NewThread, ThreadStore
from tests.conftest import Service
from tests.fakes.openai_server import FakeOpenAI, step
from tests.test_flow import _start

Factory = Callable[..., Awaitable[Service]]

LIST = 'command = ["{python}", "-c", "print(1)"]'
APPROVED = f'{LIST}\nneeds_approval = true\napprovers = ["rest:*"]'
"""A rollback the child runs only once someone approves it."""
ROLLS_BACK = 'command = ["{python}", "-c", "print(\'rolled back\')"]'


def _agent(name: str, rollback: str) -> str:
    """An agent on the deploybot module: two trivial tools and the rollback given."""
    return f"""
[agents.{name}]
module = "agent.examples.deploybot"
prompt = "deploybot/v1"
[agents.{name}.tools.list_tags]
{LIST}
[agents.{name}.tools.deploy]
{LIST}
[agents.{name}.tools.rollback]
{rollback}
"""


def agents_toml(*, depth: int = 3, child_rollback: str = "") -> str:
    """deploybot hands rollbacks to rollbackbot; rollbackbot's own rollback is given."""
    handoff = (
        'agent = "rollbackbot"\n'
        'message = "Roll {{ env }} back to the release before, then tell me."\n'
        f"max_depth = {depth}"
    )
    return (
        'default_agent = "deploybot"\n'
        + _agent("deploybot", handoff)
        + _agent("rollbackbot", child_rollback or ROLLS_BACK)
    )


def _registry(tmp_path: Path, text: str) -> Registry:
    path = tmp_path / "switchboard.toml"
    path.write_text(text)
    return config.load(path)


Agents = Callable[[str], Awaitable[Service]]


@pytest.fixture
def agents(service_factory: Factory, llm: OpenAILLM, tmp_path: Path) -> Agents:
    """Starts the service on the agents of a file."""

    async def start(text: str) -> Service:
        return await service_factory(llm, reg=_registry(tmp_path, text))

    return start


async def test_the_childs_answer_becomes_the_parents_result(
    agents: Agents, fake_llm: FakeOpenAI
) -> None:
    fake_llm.script(
        step("rollback", env="production"),  # the parent hands off
        step("rollback", env="production"),  # the child rolls back
        step("done_for_now", message="Rolled production back to v1.2.2."),  # the child
        step("done_for_now", message="Production is back on v1.2.2."),  # the parent
    )
    service = await agents(agents_toml())
    tid = await _start(service, "production is broken, roll it back")
    view = await service.settled(tid, "done")

    [started] = [e for e in view.events if isinstance(e, ToolStarted)]
    child = started.external_id
    assert (started.tool, started.agent) == ("rollback", "rollbackbot")
    assert child == thread_id_for(CHANNEL, started.call_id)
    [result] = [e for e in view.events if isinstance(e, ToolResult)]
    assert (result.call_id, result.output) == (started.call_id, "Rolled production back to v1.2.2.")
    # Only the parent's final answer reached the human; the child's went to the parent.
    assert [o.item.kind for o in view.outbox] == ["final"]
    assert view.outbox[0].item.text == "Production is back on v1.2.2."

    kid = await service.settled(child, "done")
    first = kid.events[0]
    assert isinstance(first, UserMessage)
    assert (first.channel, first.sender) == (CHANNEL, "deploybot")
    assert first.text == "Roll production back to the release before, then tell me."
    assert [e.output for e in kid.events if isinstance(e, ToolResult)] == ["rolled back"]
    assert [(o.item.kind, o.item.to.channel) for o in kid.outbox] == [("final", CHANNEL)]

    # Both threads show the link.
    parent_out = (await service.api.get(f"/v1/threads/{tid}")).json()
    assert parent_out["children"] == [
        {"thread_id": child, "agent": "rollbackbot", "call_id": started.call_id}
    ]
    assert parent_out["meta"].get("parent") is None
    child_out = (await service.api.get(f"/v1/threads/{child}")).json()
    assert child_out["meta"]["parent"] == {"thread_id": tid, "call_id": started.call_id, "depth": 1}
    assert child_out["meta"]["agent"] == "rollbackbot"
    assert child_out["meta"]["origin"] == parent_out["meta"]["origin"]


async def test_a_handoff_deeper_than_the_limit_is_a_tool_error(
    agents: Agents, fake_llm: FakeOpenAI
) -> None:
    # rollbackbot hands rollbacks back to deploybot: a loop the limit (2) stops at depth 3.
    text = agents_toml(depth=2).replace(
        f"[agents.rollbackbot.tools.rollback]\n{ROLLS_BACK}",
        '[agents.rollbackbot.tools.rollback]\nagent = "deploybot"\nmessage = "again: {{ env }}"\n'
        "max_depth = 2",
    )
    fake_llm.script(
        step("rollback", env="staging"),  # root -> child (depth 1)
        step("rollback", env="staging"),  # child -> grandchild (depth 2)
        step("rollback", env="staging"),  # grandchild: depth 3 refused
        step("done_for_now", message="too deep"),  # grandchild
        step("done_for_now", message="child done"),  # child
        step("done_for_now", message="root done"),  # root
    )
    service = await agents(text)
    tid = await _start(service, "roll back staging")
    view = await service.settled(tid, "done", within=20)
    assert [e.text for e in view.events if isinstance(e, FinalAnswer)] == ["root done"]

    [first] = [e for e in view.events if isinstance(e, ToolStarted)]
    child = await service.settled(first.external_id, "done")
    [second] = [e for e in child.events if isinstance(e, ToolStarted)]
    grandchild = await service.settled(second.external_id, "done")
    assert grandchild.meta.parent is not None
    assert grandchild.meta.parent.depth == 2
    [error] = [e for e in grandchild.events if isinstance(e, ToolError)]
    assert error.error == (
        "handoff to rollbackbot refused: this thread is 2 handoff(s) deep and the limit is 2"
    )
    assert not [e for e in grandchild.events if isinstance(e, ToolStarted)]
    assert [e.output for e in child.events if isinstance(e, ToolResult)] == ["too deep"]


async def test_cancelling_the_parent_cancels_the_child(
    agents: Agents, fake_llm: FakeOpenAI
) -> None:
    text = agents_toml(child_rollback=APPROVED)
    fake_llm.script(step("rollback", env="production"), step("rollback", env="production"))
    service = await agents(text)
    tid = await _start(service, "roll back production")
    parent = await service.settled(tid, "waiting")
    [started] = [e for e in parent.events if isinstance(e, ToolStarted)]
    child = await service.settled(started.external_id, "awaiting_human")
    [approval] = child.requests
    assert approval.request.kind == "approval"
    assert [o.item.to for o in child.outbox] == [parent.meta.origin]  # asked where the parent was

    missing = await service.api.post("/v1/threads/th_nope/cancel", json={})
    assert missing.status_code == 404
    r = await service.api.post(f"/v1/threads/{tid}/cancel", json={"reason": "fixed by hand"})
    assert r.status_code == 202, r.text
    parent = await service.settled(tid, "cancelled")
    kid = await service.settled(started.external_id, "cancelled")

    assert [e.text for e in parent.events if isinstance(e, Cancelled)] == [
        "cancelled by rest:api: fixed by hand"
    ]
    [dropped] = [e for e in parent.events if isinstance(e, ToolResult)]
    assert (dropped.call_id, dropped.outcome) == (started.call_id, "withdrawn")
    assert [e.text for e in kid.events if isinstance(e, Cancelled)] == [
        f"cancelled by thread:{tid}: its parent was cancelled"
    ]
    assert [r.status for r in kid.requests] == ["withdrawn"]
    late = await service.api.post(
        f"/v1/requests/{approval.request.request_id}", json={"decision": "approve"}
    )
    assert late.status_code == 409
    # The parent's people hear of it once; the child says nothing of its own.
    assert [o.item.kind for o in parent.outbox] == ["notice"]
    assert [o.item.kind for o in kid.outbox] == ["approval"]


async def test_a_new_message_withdraws_the_handoff_and_cancels_the_child(
    agents: Agents, fake_llm: FakeOpenAI
) -> None:
    """on_new_message = "withdraw" (the default) holds for a handoff as for an approval: the
    ask changed, so the child stops and the model decides again with the new message."""
    fake_llm.script(
        step("rollback", env="production"),  # deploybot hands off
        step("rollback", env="production"),  # rollbackbot asks to roll back
        step("done_for_now", message="Leaving production alone, then."),  # deploybot again
    )
    service = await agents(agents_toml(child_rollback=APPROVED))
    tid = await _start(service, "roll back production")
    parent = await service.settled(tid, "waiting")
    [started] = [e for e in parent.events if isinstance(e, ToolStarted)]
    assert started.withdraw_on_message
    child = await service.settled(started.external_id, "awaiting_human")
    [approval] = child.requests

    r = await service.api.post(
        f"/v1/threads/{tid}/messages", json={"message": "wait, it recovered: leave it"}
    )
    assert r.status_code == 202, r.text
    parent = await service.settled(tid, "done")
    kid = await service.settled(started.external_id, "cancelled")

    [dropped] = [e for e in parent.events if isinstance(e, ToolResult)]
    assert (dropped.call_id, dropped.outcome) == (started.call_id, "withdrawn")
    assert parent.events[-1].type == "final_answer"
    assert [e.text for e in kid.events if isinstance(e, Cancelled)] == [
        f"cancelled by thread:{tid}: its parent's ask changed"
    ]
    assert [r.status for r in kid.requests] == ["withdrawn"]
    late = await service.api.post(
        f"/v1/requests/{approval.request.request_id}", json={"decision": "approve"}
    )
    assert late.status_code == 409


def test_a_handoff_to_an_agent_not_configured_is_refused(tmp_path: Path) -> None:
    text = agents_toml().replace('agent = "rollbackbot"', 'agent = "nobot"')
    problem = "rollback.agent: no agent 'nobot' is configured"
    with pytest.raises(ConfigError, match=re.escape(problem)):
        _registry(tmp_path, text)


@pytest.mark.parametrize(
    ("tool", "problem"),
    [
        ('agent = "rollbackbot"', "a handoff (agent) needs a message"),
        ('agent = "rollbackbot"\nmessage = "{{ env"', "message template"),
        ('agent = "rollbackbot"\nmessage = "x"\ncommand = ["true"]', "runs no command or url"),
        ('message = "x"\ncommand = ["true"]', "message is for a handoff"),
    ],
)
def test_bad_handoff_declarations_are_refused(tmp_path: Path, tool: str, problem: str) -> None:
    text = agents_toml().replace(
        'agent = "rollbackbot"\nmessage = "Roll {{ env }} back to the release before, then '
        'tell me."',
        tool,
    )
    with pytest.raises(ConfigError, match=re.escape(problem)):
        _registry(tmp_path, text)


async def test_a_handoff_cut_off_before_it_was_recorded_starts_its_child_once(
    agents: Agents, fake_llm: FakeOpenAI, store: ThreadStore
) -> None:
    # A worker decided the handoff, recorded it as started, made the child, and died before
    # its ToolStarted was committed: the next run finds a 'started' call with no record.
    tid, cid = "th_cut", "call_cut"
    create = NewThread(agent="deploybot", origin=Origin(channel="rest", address="alice"))
    hello = UserMessage(channel="rest", sender="alice", text="roll back staging")
    await store.append_inbound(tid, hello, create=create)
    lease = await store.acquire(tid, "dead-worker", 5_000)
    assert lease is not None
    step_ = AgentStep(intent="rollback", arguments={"env": "staging"}, prompt="p", call_id=cid)
    await store.commit(lease, ttl_ms=5_000, events=[step_], ledger={cid: "started"}, release=True)
    child = thread_id_for(CHANNEL, cid)
    first = UserMessage(channel=CHANNEL, sender="deploybot", text="already made")
    link = ParentLink(thread_id=tid, call_id=cid)
    made = NewThread(agent="rollbackbot", origin=create.origin, parent=link)
    await store.append_inbound(child, first, dedupe=f"handoff:{cid}", create=made)

    fake_llm.script(
        step("done_for_now", message="staging rolled back"),  # the child
        step("done_for_now", message="done"),  # the parent
    )
    service = await agents(agents_toml())
    await store.runs.add({"t": tid})
    view = await service.settled(tid, "done")
    assert not [e for e in view.events if isinstance(e, SystemNote)]  # nobody was asked
    [started] = [e for e in view.events if isinstance(e, ToolStarted)]
    assert started.external_id == child
    assert [e.output for e in view.events if isinstance(e, ToolResult)] == ["staging rolled back"]
    kid = await service.settled(child, "done")
    assert [e.text for e in kid.events if isinstance(e, UserMessage)] == ["already made"]


async def test_a_child_cancelled_on_its_own_fails_the_parents_call(
    agents: Agents, fake_llm: FakeOpenAI
) -> None:
    text = agents_toml(child_rollback=APPROVED)
    fake_llm.script(
        step("rollback", env="production"),
        step("rollback", env="production"),
        step("done_for_now", message="The rollback was cancelled."),
    )
    service = await agents(text)
    tid = await _start(service, "roll back production")
    parent = await service.settled(tid, "waiting")
    [started] = [e for e in parent.events if isinstance(e, ToolStarted)]
    await service.settled(started.external_id, "awaiting_human")

    r = await service.api.post(f"/v1/threads/{started.external_id}/cancel", json={})
    assert r.status_code == 202, r.text
    await service.settled(started.external_id, "cancelled")
    parent = await service.settled(tid, "done")
    [error] = [e for e in parent.events if isinstance(e, ToolError)]
    assert (error.call_id, error.error) == (
        started.call_id,
        "rollbackbot was cancelled by rest:api",
    )
    assert [o.item.kind for o in parent.outbox] == ["final"]
